"""Step 1 of an evaluation: a model's probabilities for every image of a split that can be scored."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from emolens.data.cache import load_dataset
from emolens.data.dataset import Split
from emolens.evaluate.matching import ClassMatch, match_classes, run_validation_images, scored_images, unseen_images
from emolens.models.classifier import Classifier, EnsembleClassifier, load_classifiers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitPredictions:
    """A model's answers on one split: what every later step of an evaluation reads.

    Attributes:
        classifier: the Classifier (an EnsembleClassifier for several models).
        models: the models as given.
        data, split, tta: what was evaluated, and the test-time augmentation.
        images: the scored images of the split and their file names (see `emolens.evaluate.matching`).
        y_true: true class indices, in the model's class order (with a labels file of votes, the majority).
        probabilities, raw: calibrated and raw class probabilities (N, classes).
        votes: with a labels file of votes, each face's vote shares over the model's classes; else None.
        source_labels: with a labels file, the source's own label (its folder) in the model's classes, -1 where
            the model lacks it; else None.
        left_out: images of the split not scored, by reason.
        classes: how the dataset's classes met the model's (`ClassMatch`).

    Examples:
        >>> predictions = predict_split("default", "fer2013.zip")      # doctest: +SKIP
        >>> predictions.probabilities.shape, predictions.class_names[3]   # doctest: +SKIP
        ((3589, 7), 'happy')
    """

    classifier: Classifier
    models: list[str | os.PathLike]
    data: str | os.PathLike
    split: str
    tta: str
    images: Split
    y_true: np.ndarray
    probabilities: np.ndarray
    raw: np.ndarray
    votes: np.ndarray | None = None
    source_labels: np.ndarray | None = None
    left_out: dict[str, int] = field(default_factory=dict)
    classes: ClassMatch | None = None
    labels_file: str = ""

    @property
    def y_pred(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names


def predict_split(
    model: str | os.PathLike | Sequence[str | os.PathLike],
    data: str | os.PathLike,
    *,
    split: str = "test",
    batch_size: int = 256,
    cache: bool = True,
    tta: str = "none",
    labels: str | os.PathLike | None = None,
    class_map: Mapping[str, str] | None = None,
) -> SplitPredictions:
    """Step 1: `model`'s probabilities for every image of one split that can be scored (the arguments as
    `evaluate`'s; see `emolens.evaluate.matching` for which images are left out).

    Examples:
        >>> predictions = predict_split("default", "fer2013.zip", tta="flip")    # doctest: +SKIP
        >>> (predictions.y_pred == predictions.y_true).mean()                   # doctest: +SKIP
        0.6305
    """
    models = [model] if isinstance(model, (str, os.PathLike)) else list(model)
    trained = load_classifiers(models)
    dataset = load_dataset(data, bare_split=split, cache=cache, labels=labels)
    # Datasets and models may name and order classes differently (the FER2013 CSV orders them its own way).
    match = match_classes(dataset.class_names, trained.class_names, class_map)
    members = trained.members if isinstance(trained, EnsembleClassifier) else [trained]
    runs = [m.run_dir for m in members if m.run_dir is not None]
    images = dataset.splits.get(split)
    if images is None and split == "val" and "train" in dataset.splits:
        # A source without val/ gave the run a slice of train to validate on: that slice is its val split.
        images = run_validation_images(dataset.split("train"), runs)
        if images is not None:
            logger.info(
                "%s has no val/: scoring the %d training images the run held out for validation", data, len(images)
            )
    unseen, used = unseen_images(images if images is not None else dataset.split(split), split, runs, str(data))
    scored = scored_images(unseen, dataset.class_names, match)
    left_out = {**dataset.labelling.get(split, {}), **used, **scored.left_out}
    for reason, count in left_out.items():
        logger.warning("Left out %d %s images: %s", count, split, reason)
    probabilities, raw = trained.predict_both(scored.images.images, batch_size=batch_size, tta=tta)
    return SplitPredictions(
        trained,
        models,
        data,
        split,
        tta,
        scored.images,
        scored.y_true,
        probabilities,
        raw,
        scored.votes,
        scored.source_labels,
        left_out,
        match,
        dataset.labels_file,
    )
