"""Training runs: configure, train, resume, calibrate.

Names are imported on first use, so reading a recipe, a config or a run's record does not load Keras.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Calibration", "RunRecord", "RunState", "TrainConfig", "TrainResult", "calibrate", "resume", "train"]


def __getattr__(name: str) -> Any:
    if name == "TrainConfig":
        from emolens.train.config import TrainConfig

        return TrainConfig
    if name == "RunRecord":
        from emolens.train.record import RunRecord

        return RunRecord
    if name == "RunState":
        from emolens.train.state import RunState

        return RunState
    if name in ("Calibration", "calibrate"):
        from emolens.train import calibration

        return getattr(calibration, name)
    if name == "TrainResult":
        from emolens.train.fitting import TrainResult

        return TrainResult
    if name == "train":
        from emolens.train.trainer import train

        return train
    if name == "resume":
        from emolens.train.resuming import resume

        return resume
    raise AttributeError(f"module 'emolens.train' has no attribute {name!r}")
