"""Carving a validation set out of train, and capping splits for quick runs."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import train_test_split

from emolens.data.dataset import Dataset, Split
from emolens.errors import EmolensError

logger = logging.getLogger(__name__)


def train_val_splits(dataset: Dataset, *, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """The training and validation splits: the source's own val/ if it has one, else a stratified slice of train.

    Checkpoints and schedules look only at the validation split, so test stays unseen until evaluation.

    Args:
        dataset: the loaded Dataset; it must have a train split.
        val_fraction: float. Fraction of train held out when the source has no val split.
        seed: int. Seeds the stratified shuffle.

    Returns:
        (train, val).
    """
    train = dataset.split("train")
    if "val" in dataset.splits:
        return train, dataset.splits["val"]
    if not 0 < val_fraction < 1:
        raise EmolensError(f"val_split must be between 0 and 1 (received {val_fraction}); 0.1 holds out 10% of train.")
    indices = np.arange(len(train))
    try:
        kept, held_out = train_test_split(indices, test_size=val_fraction, stratify=train.labels, random_state=seed)
    except ValueError:
        # Stratifying needs two images of every class and a slice at least as large as the class count; a few
        # dozen faces of one's own may have neither. An unstratified slice still holds out the fraction.
        counts = np.bincount(train.labels, minlength=len(dataset.class_names))
        single = [name for name, count in zip(dataset.class_names, counts, strict=True) if count == 1]
        why = f"one training image of {', '.join(single)}" if single else "fewer images to hold out than classes"
        logger.warning(
            "%s has %s: validation is a random slice of train, not one stratified by class.", dataset.source, why
        )
        try:
            kept, held_out = train_test_split(indices, test_size=val_fraction, random_state=seed)
        except ValueError as error:
            raise EmolensError(
                f"cannot hold out {val_fraction:.0%} of {len(train)} training images for validation. "
                "Add images, change --val-split, or add a val/ folder."
            ) from error
    return train.subset(np.sort(kept)), train.subset(np.sort(held_out))


def limit_per_class(split: Split, limit: int, *, seed: int) -> Split:
    """At most `limit` images of each class, picked at random (seeded), in their original order."""
    if limit < 1:
        raise EmolensError(f"limit must be at least 1 image per class (received {limit}).")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        chosen.append(members if len(members) <= limit else rng.choice(members, limit, replace=False))
    return split.subset(np.sort(np.concatenate(chosen)))
