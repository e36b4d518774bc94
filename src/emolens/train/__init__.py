"""Training runs: configure, train, resume, calibrate.

Names are imported on first use, so reading a recipe, a config or a run's record does not load Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Calibration", "RunRecord", "RunState", "TrainConfig", "TrainResult", "calibrate", "resume", "train"]


# Where each public name lives, imported on first use.
_HOMES = {
    "Calibration": "emolens.train.calibration",
    "calibrate": "emolens.train.calibration",
    "RunRecord": "emolens.train.record",
    "RunState": "emolens.train.state",
    "TrainConfig": "emolens.train.config",
    "TrainResult": "emolens.train.fitting",
    "resume": "emolens.train.resuming",
    "train": "emolens.train.trainer",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'emolens.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
