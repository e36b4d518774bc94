"""The data a run trains on: the training and validation splits a config asks for, as model input."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emolens._io import atomic_path
from emolens.data.dataset import Dataset, Split
from emolens.data.inspection import ImageRef, clean_dataset, inspect_dataset
from emolens.data.preprocess import to_model_input
from emolens.data.split import limit_per_class, train_val_splits
from emolens.errors import EmolensError
from emolens.train.config import TrainConfig

logger = logging.getLogger(__name__)


def check_trainable_classes(dataset: Dataset) -> None:
    """At least two classes with training images, or an error; a warning names classes that have none.

    A folder's empty class is already an error when loading; a FER2013 CSV always has seven classes, and
    may hold rows of only some of them. A single class would train a model that answers it for every face
    and reports a perfect validation accuracy.
    """
    counts = np.bincount(dataset.split("train").labels, minlength=len(dataset.class_names))
    present = [name for name, count in zip(dataset.class_names, counts, strict=True) if count]
    if len(present) < 2:
        raise EmolensError(
            f"{dataset.source} has training images of {len(present)} class{'' if len(present) == 1 else 'es'} "
            f"({', '.join(present) or 'none'}): a classifier needs at least two. Add images of the other classes."
        )
    empty = [name for name, count in zip(dataset.class_names, counts, strict=True) if not count]
    if empty:
        logger.warning(
            "%s has no training images of %s: the model will never predict %s.",
            dataset.source,
            ", ".join(empty),
            "them" if len(empty) > 1 else "it",
        )


def prepare_splits(
    dataset: Dataset, config: TrainConfig, devices: int = 1
) -> tuple[Split, Split, list[tuple[ImageRef, str]]]:
    """Train and validation splits as the config asks (each divisible by `devices`), and the images --dedupe
    left out (with reasons)."""
    removed: list[tuple[ImageRef, str]] = []
    if config.dedupe != "none":
        dataset, removed = clean_dataset(dataset, inspect_dataset(dataset, near=config.dedupe == "near"))
    split_seed = config.seed if config.split_seed is None else config.split_seed
    train, val = train_val_splits(dataset, val_fraction=config.val_split, seed=split_seed)
    if config.limit is not None:
        train = limit_per_class(train, config.limit, seed=split_seed)
        val = limit_per_class(val, config.limit, seed=split_seed)
    return _divisible(train, devices, "training"), _divisible(val, devices, "validation"), removed


def model_arrays(
    split: Split, class_names: Sequence[str], config: TrainConfig, teacher_answers: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Model input and the targets the config asks for: one-hot labels, or with a labels file the vote shares
    (or their majority); `source_label_weight` of each target is the source's own label and `teacher_weight`
    the teacher model's probabilities, the rest the labels or votes. The teacher's answers are read from
    `teacher_answers` (a .npy file) when it holds them, else predicted and written there. A teacher inside the
    trainer (`config.view_teacher`) adds its share at each step: the targets are then the rest of the
    mix, rescaled to sum to 1."""
    num_classes = len(class_names)
    targets = (
        split.targets(num_classes) if config.target == "votes" else np.eye(num_classes, dtype=np.float32)[split.labels]
    )
    # Where the source's class is not one of the labels file's, its share stays with the votes.
    source_weight = np.zeros((len(split), 1), np.float32)
    source = np.zeros_like(targets)
    if config.source_label_weight and split.source_labels is not None:
        known = split.source_labels >= 0
        source = np.eye(num_classes, dtype=np.float32)[np.where(known, split.source_labels, 0)]
        source_weight[:, 0] = np.where(known, config.source_label_weight, 0.0)
    teacher_weight = config.teacher_weight if config.teacher else 0.0
    mixed = (1 - source_weight - teacher_weight) * targets + source_weight * source
    if config.view_teacher:
        mixed = mixed / (1 - teacher_weight) if teacher_weight < 1 else targets  # with all of it the teacher's, unused
    elif config.teacher and teacher_weight:
        mixed += teacher_weight * _teacher_targets(
            config.teacher, config.teacher_tta, split, class_names, teacher_answers
        )
    return to_model_input(split.images), mixed


def _teacher_targets(
    teacher: str, tta: str, split: Split, class_names: Sequence[str], answers: Path | None
) -> np.ndarray:
    """The teacher's answers for `split`, from the `answers` file where it holds them (a resumed run), else
    asked of the teacher and kept there."""
    if answers is not None and answers.is_file():
        kept = np.load(answers)
        if kept.shape == (len(split), len(class_names)):
            logger.info("Teacher's answers read from %s", answers)
            return kept
        logger.warning("%s holds answers for other images: asking the teacher again", answers)
    probabilities = teacher_probabilities(teacher, split.images, class_names, tta=tta)
    if answers is not None:
        with atomic_path(answers) as temporary, temporary.open("wb") as file:
            np.save(file, probabilities)
    return probabilities


def teacher_class_order(teacher: str, teacher_classes: Sequence[str], class_names: Sequence[str]) -> list[int]:
    """The index of each of `class_names` among the teacher's classes; an EmolensError if the two sets differ."""
    if sorted(teacher_classes) != sorted(class_names):
        raise EmolensError(
            f"the teacher {teacher} predicts {', '.join(teacher_classes)} but the data has "
            f"{', '.join(class_names)}: distil from a model trained on the same classes."
        )
    return [list(teacher_classes).index(name) for name in class_names]


def teacher_probabilities(
    teacher: str, images: np.ndarray, class_names: Sequence[str], *, tta: str = "flip"
) -> np.ndarray:
    """What model `teacher` answers for uint8 face `images` (calibrated, with test-time augmentation `tta`), as
    (N, classes) float32 in `class_names`' order: the soft targets a student learns from when distilling."""
    from emolens.models.classifier import load_classifier

    classifier = load_classifier(teacher)
    order = teacher_class_order(teacher, classifier.class_names, class_names)
    logger.info("Teacher %s: predicting %d training images (%s TTA)", teacher, len(images), tta)
    return classifier.predict(images, tta=tta)[:, order].astype(np.float32)


def _divisible(split: Split, devices: int, name: str) -> Split:
    """`split` less its last few images, so that its size, and so every batch, splits evenly over `devices`
    (a batch sharded over devices must divide by their number; the batch size already does)."""
    extra = len(split) % devices
    if not extra:
        return split
    logger.info(
        "Leaving out %d of %d %s images so that every batch splits evenly over %d devices",
        extra,
        len(split),
        name,
        devices,
    )
    return split.subset(np.arange(len(split) - extra))
