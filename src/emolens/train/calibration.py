"""Fitting a model's confidence: the temperature of its card, from the validation images it was trained beside.

`emolens train` calibrates the model it writes when training ends; `emolens calibrate MODEL DATA` does it for
a model that already exists (the bundled one, an exported .onnx file, an older run). Either way the number
goes into the model file's card, and every prediction, evaluation and served answer applies it from then on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from emolens._io import write_json
from emolens.data.cache import load_dataset
from emolens.data.dataset import Split
from emolens.errors import EmolensError
from emolens.models.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from emolens.models.card import write_card
from emolens.models.classifier import Classifier, load_classifier, resolve_model_path
from emolens.rundir import RunDir
from emolens.train.config import TrainConfig
from emolens.train.record import RunRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it changed on the images it was fitted on.

    Attributes:
        temperature: the logits' divisor (above 1 softens an over-confident model).
        images: how many validation images it was fitted on.
        nll_before, nll_after: their mean negative log-likelihood, raw and calibrated.
        ece_before, ece_after: their expected calibration error (15 bins) against their labels, raw and
            calibrated.
        vote_ece_before, vote_ece_after: with votes, the same against the vote shares (the gap between
            confidence and the share of people who chose the answer, which the temperature was fitted to); None
            without.

    Examples:
        >>> calibration = Calibration(temperature=1.3, images=2871, nll_before=1.10, nll_after=1.05, ece_before=0.08, ece_after=0.02)
        >>> calibration.to_card()["ece_after"]
        0.02
    """

    temperature: float
    images: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    vote_ece_before: float | None = None
    vote_ece_after: float | None = None

    def to_card(self) -> dict[str, Any]:
        """The card's record of it (the temperature itself is the card's `temperature` field)."""
        measured = {
            key: round(value, 4)
            for key, value in asdict(self).items()
            if key not in ("temperature", "images") and value is not None
        }
        return {"split": "val", "images": self.images, **measured}

    def error_change(self) -> str:
        """The calibration error before -> after, in words: against the vote shares first where there are votes
        (what the temperature was fitted to), then against the labels."""
        labels = f"{self.ece_before:.3f} -> {self.ece_after:.3f}"
        if self.vote_ece_before is None or self.vote_ece_after is None:
            return f"calibration error (ECE) {labels}"
        return (
            f"gap between confidence and vote share {self.vote_ece_before:.3f} -> {self.vote_ece_after:.3f} "
            f"(calibration error against the majority {labels})"
        )


def fit_calibration(
    classifier: Classifier, faces: np.ndarray, labels: np.ndarray, votes: np.ndarray | None = None
) -> Calibration:
    """The temperature for `classifier` fitted on uint8 `faces` with class indices `labels` (in its class order),
    or on their vote shares (N, classes) where there are votes: confidence then estimates the share of people
    who would name that emotion, and its calibration error is measured against those shares too (beside the
    error against `labels`, against which such confidence looks too low: the majority's answer is right more
    often than the share of people who gave it).

    One view per face (no test-time augmentation): the temperature rescales the network's own output, and
    prediction averages views after applying it.
    """
    raw = classifier.predict(faces, calibrated=False)
    targets = labels if votes is None else votes
    temperature = fit_temperature(raw, targets)
    calibrated = apply_temperature(raw, temperature)
    return Calibration(
        temperature=round(temperature, 4),
        images=len(labels),
        nll_before=negative_log_likelihood(raw, targets),
        nll_after=negative_log_likelihood(calibrated, targets),
        ece_before=expected_calibration_error(raw, labels),
        ece_after=expected_calibration_error(calibrated, labels),
        vote_ece_before=None if votes is None else expected_calibration_error(raw, votes),
        vote_ece_after=None if votes is None else expected_calibration_error(calibrated, votes),
    )


def store_calibration(
    classifier: Classifier, calibration: Calibration, class_scale: Mapping[str, float] | None = None
) -> None:
    """Writes `calibration` into the card of the model file `classifier` was loaded from, and into the copy of
    the card that `emolens export` writes beside it (`<name>.json`), when there is one; with `class_scale`,
    that too ({} removes the card's)."""
    card = replace(classifier.card.with_details(calibration=calibration.to_card()), temperature=calibration.temperature)
    if class_scale is not None:
        card = replace(card, class_scale=dict(class_scale) or None)
    write_card(classifier.path, card)
    beside = classifier.path.with_suffix(".json")
    if beside.is_file():
        write_json(beside, card.to_dict())


def _training_config(path: Path, card: Any) -> TrainConfig:
    """The settings the model was trained with, which decide its validation images: from its run folder's
    config.json, else from its card's recipe (exported and bundled models), else the defaults."""
    run = RunDir.holding(path)
    if run is not None:
        return RunRecord.read(run).config
    recipe = card.get("recipe")
    return TrainConfig.from_dict(recipe) if isinstance(recipe, dict) else TrainConfig()


def validation_split(
    classifier: Classifier, data: str | os.PathLike, *, cache: bool, labels: str | os.PathLike | None
) -> Split:
    """The validation images of `data` that `classifier` was trained beside (the slice its run's config, or its
    card's recipe, held out), in its classes (which the data may not all have: a fine-tuned model keeps its own);
    an error if the data has classes the model does not know."""
    from emolens.train.data import prepare_splits  # imports Keras: only once a model is really calibrated

    dataset = load_dataset(data, cache=cache, labels=labels)
    unknown = sorted(set(dataset.class_names) - set(classifier.class_names))
    if unknown:
        raise EmolensError(
            f"{data} has classes the model does not know: {', '.join(unknown)}. The model knows: {', '.join(classifier.class_names)}."
        )
    training_config = _training_config(classifier.path, classifier.card)
    _, val, _ = prepare_splits(dataset.with_classes(tuple(classifier.class_names)), training_config)
    return val


def _check_class_scale(class_scale: Mapping[str, float] | None, class_names: Sequence[str]) -> None:
    """An error unless every class `class_scale` names is one of `class_names`, with a positive, finite factor."""
    unknown_scaled = sorted(set(class_scale or {}) - set(class_names))
    if unknown_scaled:
        raise EmolensError(
            f"class_scale names {', '.join(unknown_scaled)}, which the model lacks. The model knows: {', '.join(class_names)}."
        )
    if any(not 0 < factor < float("inf") for factor in (class_scale or {}).values()):
        raise EmolensError(
            f"class_scale factors must be positive numbers (received {class_scale}); 1 leaves a class as it is."
        )


def calibrate(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    cache: bool = True,
    labels: str | os.PathLike | None = None,
    class_scale: Mapping[str, float] | None = None,
) -> Calibration:
    """Fits `model`'s temperature on the validation images of `data` and writes it into the model file's card.

    The validation images are the ones the model was trained beside: `data`'s val/ folder, or the same slice of
    train that training held out (its seed and fraction come from the run or the card).

    Args:
        model: a run folder, a .keras or .onnx file, or "default" (the bundled model, rewritten in place).
        data: the dataset the model was trained on.
        cache: bool. Use the decoded-dataset cache. Defaults to True.
        labels: str or path or None. The labels file the model was trained with (as train's), if any: with
            votes, the temperature is fitted to the vote shares. Defaults to None.
        class_scale: dict or None. Factors for some classes' probabilities after the temperature (see
            `emolens.models.calibration.apply_class_scale`), chosen on validation images (`bench/frontier.py`),
            e.g. {"neutral": 0.6}; {} removes the card's. Defaults to None: the card's stay as they are.

    Returns:
        The Calibration written.

    Examples:
        >>> calibrate("runs/mini_resnet-20261204", "fer2013.zip").temperature  # doctest: +SKIP
        1.32
    """
    path = resolve_model_path(model)
    classifier = load_classifier(path)
    val = validation_split(classifier, data, cache=cache, labels=labels)
    _check_class_scale(class_scale, classifier.class_names)
    calibration = fit_calibration(classifier, val.images, val.labels, val.votes)
    store_calibration(classifier, calibration, class_scale)
    logger.debug(
        "Temperature %.3f fitted on %d validation images; written to %s",
        calibration.temperature,
        calibration.images,
        path,
    )
    return calibration
