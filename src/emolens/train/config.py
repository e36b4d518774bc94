"""A training run's settings as plain data: saved whole in the run's config.json, and read back to resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from emolens.data.augment import AugmentConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does.

    Args:
        model: str. A registered model name (`emolens models`). Defaults to "seed".
        epochs: int. Total epochs. Defaults to 50.
        batch_size: int. Images per step. Defaults to 64.
        learning_rate: float or None. Adam's initial rate; None takes the model's own. Defaults to None.
        val_split: float. Fraction of train held out for validation when the source has no val/. Defaults to 0.1.
        seed: int. Seeds the split, initial weights, shuffling and augmentation. Defaults to 0.
        limit: int or None. At most this many images per class in each split, for quick runs. Defaults to None.
        augment: AugmentConfig. Training-time augmentation. Defaults to AugmentConfig().
    """

    model: str = "seed"
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float | None = None
    val_split: float = 0.1
    seed: int = 0
    limit: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"Expected epochs >= 1. Received: epochs={self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={self.batch_size}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"Expected a positive learning_rate. Received: learning_rate={self.learning_rate}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"Expected limit >= 1 image per class. Received: limit={self.limit}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        return cls(**{**values, "augment": AugmentConfig(**values.get("augment", {}))})
