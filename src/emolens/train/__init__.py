"""Training runs: configure, train, resume, calibrate.

Names are imported on first use, so reading a recipe or a config does not load Keras.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Calibration", "TrainConfig", "TrainResult", "calibrate", "resume", "train"]


def __getattr__(name: str) -> Any:
    if name == "TrainConfig":
        from emolens.train.config import TrainConfig

        return TrainConfig
    if name in ("Calibration", "calibrate"):
        from emolens.train import calibration

        return getattr(calibration, name)
    if name in ("TrainResult", "resume", "train"):
        from emolens.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'emolens.train' has no attribute {name!r}")
