"""A training run's settings as plain data: saved whole in the run's config.json (`emolens.train.record.RunRecord`),
and read back to resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from emolens.constants import IMAGE_SIZE, TTA_MODES
from emolens.data.augment import AugmentConfig

OPTIMIZERS = ("adam", "sgd")
# inverse_time: the notebook's Adam `decay=1e-6` (nearly constant); cosine: warm-up then cosine decay to zero
# over the run; plateau: halve when validation loss has not improved for 5 epochs (see emolens.train.optim.PLATEAU).
SCHEDULES = ("inverse_time", "cosine", "plateau")
# balanced: n_samples / (n_classes * count), as scikit-learn; sqrt: its square root, a gentler push for rare classes.
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
# "exact": clean as `emolens data inspect --fix` does; "near": as `--fix --near` does (see emolens.data.inspection).
DEDUPE = ("none", "exact", "near")
# With a labels file of votes (emolens.data.labels): learn the vote distribution (Barsoum et al.'s best scheme), or
# its majority as one class.
TARGETS = ("votes", "majority")
TEACHER_SEES = ("faces", "views")
# bf16: Keras's mixed_bfloat16 policy for training (variables stay float32); saved models are float32 either way.
PRECISIONS = ("auto", "float32", "bf16")


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
        split_seed: int or None. Seeds the train/validation split (and `limit`'s sampling) instead of `seed`, so
            that runs of different seeds hold out the same images: ensemble members compared, averaged and
            calibrated on one validation set. Defaults to None (`seed`).
        limit: int or None. At most this many images per class in each split, for quick runs. Defaults to None.
        augment: AugmentConfig. Training-time augmentation. Defaults to AugmentConfig().
        optimizer: str. "adam" or "sgd" (with Nesterov momentum). Defaults to "adam".
        momentum: float. SGD's momentum. Defaults to 0.9.
        weight_decay: float. Decoupled weight decay, for either optimizer. Defaults to 0 (none).
        schedule: str. "inverse_time", "cosine" or "plateau" (see SCHEDULES). Defaults to "inverse_time".
        warmup_epochs: int. Epochs of linear warm-up before the cosine decay. Defaults to 0.
        label_smoothing: float. Cross-entropy label smoothing in [0, 1). Defaults to 0.
        class_weight: str. "none", "balanced" or "sqrt" (see CLASS_WEIGHTS). Defaults to "none".
        crop: int. Train on random crops of this side from the 48-pixel images, and classify centre crops (or ten
            crops with test-time augmentation); 48 means no cropping. Defaults to 48.
        precision: str. "float32", "bf16" (mixed bfloat16 compute while training), or "auto": bf16 where it was
            measured faster and no less accurate, float32 elsewhere (see `emolens.train.optim.resolve_precision`);
            a run records the precision it chose. Defaults to "auto".
        mixup: float. MixUp's Beta(alpha, alpha) parameter (0.2 is usual); 0 turns it off. Defaults to 0.
        cutmix: float. CutMix's Beta(alpha, alpha) parameter (1.0 is usual); 0 turns it off. Defaults to 0.
        dedupe: str. "none", or train on the data as `emolens data inspect --fix` would clean it: no blank
            images, one of each duplicate in train, no train copy of a test or val image; "exact" counts
            pixel-identical copies, "near" near duplicates and mirror images too. Defaults to "none".
        start_from: str or None. Fine-tune: start from this model's weights ("default" for the bundled model, a
            run folder or a .keras file); its architecture and input crop replace `model` and `crop`. Defaults to
            None (random initial weights).
        new_head: bool. With start_from, replace its output layer by a new one for the data's classes (needed
            when they differ from the model's). Defaults to False.
        freeze_epochs: int. With start_from, train only the output layer for this many epochs first (at ten
            times the learning rate), then everything. Defaults to 0.
        target: str. With a labels file of votes, what the model learns: "votes" (cross-entropy against the
            vote distribution) or "majority" (the top vote as one class). Defaults to "votes".
        source_label_weight: float. With a labels file, the share of the target that is the source's own label
            (its folder's class, as FER2013's), the rest being `target`: 0.5 is half votes, half folder label. It
            keeps a model trained on votes from calling every subtle face neutral. Defaults to 0.
        teacher: str or None. Distil: a trained model ("default", a run folder, a .keras or .onnx file) whose
            answers for each training image (calibrated, flip TTA) become part of the target, so that a small
            fast net learns what a larger one sees. Validation still scores the labels or votes. Defaults to None.
        teacher_weight: float. With teacher, the share of the target that is the teacher's answer; with
            source_label_weight, the two shares may sum to 1 at most. Defaults to 0.5.
        teacher_tta: str. The test-time augmentation of the teacher's answers: "flip", or "crops" (ten views,
            for a teacher trained on crops: a better teacher, at five times the prediction once per run). The
            answers are kept in the run folder, so a resumed run learns from the same ones. Defaults to "flip".
        teacher_sees: str. With teacher, what it answers: "faces" (each training face once, before training,
            with teacher_tta), or "views" (each augmented view as the student trains on it: consistent targets,
            for the teacher's forward pass every step; the teacher must be a Keras model). Defaults to "faces".

    Examples:
        >>> config = TrainConfig(model="mini_resnet", epochs=20, crop=44)
        >>> config.to_dict()["crop"], TrainConfig.from_dict(config.to_dict()) == config
        (44, True)
    """

    model: str = "seed"
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float | None = None
    val_split: float = 0.1
    seed: int = 0
    split_seed: int | None = None
    limit: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "inverse_time"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    class_weight: str = "none"
    crop: int = IMAGE_SIZE
    precision: str = "auto"
    mixup: float = 0.0
    cutmix: float = 0.0
    dedupe: str = "none"
    start_from: str | None = None
    new_head: bool = False
    freeze_epochs: int = 0
    target: str = "votes"
    source_label_weight: float = 0.0
    teacher: str | None = None
    teacher_weight: float = 0.5
    teacher_tta: str = "flip"
    teacher_sees: str = "faces"

    def __post_init__(self) -> None:
        for name in ("mixup", "cutmix"):
            if getattr(self, name) < 0:
                raise ValueError(f"Expected {name} >= 0 (0 turns it off). Received: {name}={getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"Expected precision to be one of {', '.join(PRECISIONS)}. Received: precision={self.precision!r}"
            )
        if not IMAGE_SIZE // 2 <= self.crop <= IMAGE_SIZE:
            raise ValueError(
                f"Expected crop between {IMAGE_SIZE // 2} and {IMAGE_SIZE} pixels. Received: crop={self.crop}"
            )
        choices_by_setting = (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("class_weight", self.class_weight, CLASS_WEIGHTS),
            ("dedupe", self.dedupe, DEDUPE),
            ("target", self.target, TARGETS),
            ("teacher_tta", self.teacher_tta, TTA_MODES),
            ("teacher_sees", self.teacher_sees, TEACHER_SEES),
        )
        for name, value, choices in choices_by_setting:
            if value not in choices:
                raise ValueError(f"Expected {name} to be one of {', '.join(choices)}. Received: {name}={value!r}")
        if not 0 <= self.source_label_weight <= 1:
            raise ValueError(
                f"Expected source_label_weight in [0, 1]. Received: source_label_weight={self.source_label_weight}"
            )
        self._check_teacher()
        if not 0 <= self.momentum < 1:
            raise ValueError(f"Expected momentum in [0, 1). Received: momentum={self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"Expected weight_decay >= 0. Received: weight_decay={self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"Expected label_smoothing in [0, 1). Received: label_smoothing={self.label_smoothing}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"Expected 0 <= warmup_epochs < epochs. Received: warmup_epochs={self.warmup_epochs}, epochs={self.epochs}"
            )
        if self.start_from is None and (self.new_head or self.freeze_epochs):
            raise ValueError(
                "Expected start_from with new_head or freeze_epochs (they fine-tune a trained model). Received: start_from=None"
            )
        if not 0 <= self.freeze_epochs < self.epochs:
            raise ValueError(
                f"Expected 0 <= freeze_epochs < epochs. Received: freeze_epochs={self.freeze_epochs}, epochs={self.epochs}"
            )
        if self.epochs < 1:
            raise ValueError(f"Expected epochs >= 1. Received: epochs={self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={self.batch_size}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"Expected a positive learning_rate. Received: learning_rate={self.learning_rate}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"Expected limit >= 1 image per class. Received: limit={self.limit}")

    def _check_teacher(self) -> None:
        if self.teacher and not (self.teacher_weight >= 0 and self.source_label_weight + self.teacher_weight <= 1):
            raise ValueError(
                "Expected teacher_weight >= 0 and source_label_weight + teacher_weight <= 1. "
                f"Received: teacher_weight={self.teacher_weight}, source_label_weight={self.source_label_weight}"
            )
        if self.teacher_sees == "views" and self.teacher_tta != "flip":
            raise ValueError(
                "Expected teacher_tta to stay 'flip' with teacher_sees='views' (a teacher answering each view sees "
                f"that view alone). Received: teacher_tta={self.teacher_tta!r}"
            )

    @property
    def view_teacher(self) -> str | None:
        """The teacher that answers inside the trainer, each augmented view (`train/distill.py`), or None."""
        return self.teacher if self.teacher_sees == "views" else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """The config saved by `to_dict`; settings added since the run began take their defaults.

        Raises:
            ValueError: an unknown setting, or one of the wrong type or out of range (a damaged or edited file).
        """
        _check_settings(cls, values, "training settings")
        augment = values.get("augment", {})
        _check_settings(AugmentConfig, augment, "augmentation settings")
        return cls(**{**values, "augment": AugmentConfig(**augment)})


def _check_settings(kind: type, values: object, what: str) -> None:
    """Raises ValueError unless `values` is an object of `kind`'s fields, each of its JSON type (a float field
    takes an int; a string for epochs, or a list for a config, is refused here rather than deep in training)."""
    if not isinstance(values, dict):
        raise ValueError(f"Expected the {what} as an object. Received: {values!r}")
    known = {f.name: str(f.type) for f in fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"Unknown {what}: {', '.join(unknown)}")
    for name, value in values.items():
        plain = all(part in _JSON_TYPES for part in known[name].split(" | "))  # not the nested AugmentConfig
        if plain and not _has_type(value, known[name]):
            raise ValueError(f"Expected {name} to be {known[name]}. Received: {name}={value!r}")


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int,
    "float": (int, float),
    "str": str,
    "bool": bool,
    "None": type(None),
}


def _has_type(value: object, annotation: str) -> bool:
    """Whether a JSON value fits a field annotated like "int", "float | None" (a bool is not a number here)."""
    kinds = [_JSON_TYPES[name] for name in annotation.split(" | ")]
    if isinstance(value, bool):
        return bool in kinds
    return any(isinstance(value, kind) for kind in kinds)
