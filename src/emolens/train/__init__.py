"""Training runs: configure, train, resume."""

from emolens.train.config import TrainConfig
from emolens.train.trainer import TrainResult, resume, train

__all__ = ["TrainConfig", "TrainResult", "resume", "train"]
