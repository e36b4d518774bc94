"""How a run optimises: the optimizer and learning-rate schedule a TrainConfig names, class weights, the
plateau schedule's callback, and the precision `auto` chooses."""

from __future__ import annotations

import keras
import numpy as np

from emolens import backend
from emolens.models import get_model_spec
from emolens.train.config import TrainConfig
from emolens.train.state import PlateauState, RunState

# The plateau schedule: halve the rate when validation loss has not improved for 5 epochs.
PLATEAU = {"monitor": "val_loss", "factor": 0.5, "patience": 5, "min_lr": 1e-6}


def base_learning_rate(config: TrainConfig) -> float:
    """The rate a run starts from: config.learning_rate, or the model's own where it is None."""
    return config.learning_rate or get_model_spec(config.model).learning_rate


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer and learning-rate schedule `config` names.

    "inverse_time" is the notebook's Adam `decay=1e-6`, which Keras 3 dropped: lr / (1 + 1e-6 * step), exactly.
    "cosine" warms up linearly over `warmup_epochs`, then decays to zero by the last epoch. "plateau" starts at
    the plain rate, which the PlateauSchedule callback lowers. Weight decay is decoupled (AdamW, or SGD's own).
    """
    rate = base_learning_rate(config)
    if config.schedule == "inverse_time":
        rate = keras.optimizers.schedules.InverseTimeDecay(rate, decay_steps=1, decay_rate=1e-6)
    elif config.schedule == "cosine":
        warmup = config.warmup_epochs * steps_per_epoch
        decay = (config.epochs - config.warmup_epochs) * steps_per_epoch
        rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else rate, decay, warmup_target=rate if warmup else None, warmup_steps=warmup
        )
    weight_decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=True, weight_decay=weight_decay)
    if weight_decay:
        return keras.optimizers.AdamW(rate, weight_decay=weight_decay)
    return keras.optimizers.Adam(rate)


def class_weights(labels: np.ndarray, num_classes: int, kind: str) -> dict[int, float] | None:
    """Per-class loss weights: None, "balanced" (n / (classes * count), as scikit-learn) or its "sqrt"."""
    if kind == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    if kind == "sqrt":
        weights = np.sqrt(weights)
    return {index: float(weight) for index, weight in enumerate(weights)}


# Models that train faster in mixed bfloat16 than in float32 on a CPU with bfloat16 hardware, and as accurately
# (bench/precision.py): seed 1.8-2.0x faster, best validation 47.2% either way over a 50-epoch pair on FER2013;
# mini_resnet, with BatchNormalization fused (backend.fuse_batch_norm), 1.56x less CPU time a step, 44.3% and
# 43.9% over a 10-epoch pair; resnet 1.64x less CPU time, best validation agreement with FER+'s majority 79.1%
# in float32 and 82.0% in bfloat16 over a 60-epoch pair of ferplus runs (seeds 0 and 1, one validation split).
BF16_FASTER_MODELS = ("seed", "mini_resnet", "resnet")


def resolve_precision(config: TrainConfig) -> str:
    """The precision a run trains in: config.precision, with "auto" made concrete for this model and machine."""
    if config.precision != "auto":
        return config.precision
    fast = backend.backend_name() == "tensorflow" and not backend.has_gpu() and backend.cpu_has_bfloat16()
    return "bf16" if fast and config.model in BF16_FASTER_MODELS else "float32"


class PlateauSchedule(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters live in the run's training state, so a resumed run keeps its place."""

    def __init__(self, state: RunState) -> None:
        super().__init__(**PLATEAU, verbose=0)
        self.state = state

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)  # resets the counters; a resumed run then restores its own
        saved = self.state.plateau
        if saved is not None:
            self.wait, self.best, self.cooldown_counter = saved.wait, saved.best, saved.cooldown_counter

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        best = None if self.best is None else float(self.best)
        self.state.plateau = PlateauState(wait=int(self.wait), best=best, cooldown_counter=int(self.cooldown_counter))
