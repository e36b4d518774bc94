"""Step 2 of an evaluation: what was measured, as one typed `Evaluation` (metrics.json is its `to_dict()`)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emolens.data.quality import sharpness, sharpness_mismatch
from emolens.evaluate.agreement import source_label_accuracy, vote_agreement
from emolens.evaluate.metrics import compute_metrics
from emolens.evaluate.predictions import SplitPredictions
from emolens.models.calibration import ECE_BINS, expected_calibration_error
from emolens.models.classifier import Classifier, EnsembleClassifier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` measured: the fields metrics.json holds, in its order.

    Attributes:
        model, model_path: the model's name (from its card) and where it was loaded from (a list for an ensemble).
        data, split, test_time_augmentation: what was scored, and how.
        num_images: images scored; `left_out` counts the others by reason.
        accuracy, macro_f1: against the true class; with a labels file of votes, against the votes' majority.
        class_names, per_class, confusion_matrix: per class precision, recall, F1 and support; rows are true.
        left_out: images of the split not scored, by reason.
        classes: how the dataset's classes met the model's, and the classes never predicted.
        calibration: the temperature and the expected calibration error, raw and as predicted.
        sharpness: the training images' sharpness (from the card) and the scored images'.
        warnings: what makes these figures weaker than they look (training images, a shift in sharpness).
        labels: with a labels file, its path and kind; else None.
        agreement: with votes, how often and how far people agree with the prediction
            (`emolens.evaluate.agreement.vote_agreement`); else None.
        source_label: with a labels file, accuracy against the folders' own labels; else None.
        report: report.html, once written; else None.

    Examples:
        >>> evaluation = evaluate("default", "fer2013.zip", tta="flip")    # doctest: +SKIP
        >>> evaluation.accuracy, evaluation.calibration["ece_calibrated"]  # doctest: +SKIP
        (0.6418, 0.0264)
        >>> evaluation.to_dict()["per_class"]["happy"]["recall"]            # doctest: +SKIP
        0.8613
    """

    model: str
    model_path: str | list[str]
    data: str
    split: str
    test_time_augmentation: str
    num_images: int
    accuracy: float
    macro_f1: float
    class_names: list[str]
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    left_out: dict[str, int]
    classes: dict[str, Any]
    calibration: dict[str, Any]
    sharpness: dict[str, float | None]
    warnings: list[str] = field(default_factory=list)
    labels: dict[str, str] | None = None
    agreement: dict[str, Any] | None = None
    source_label: dict[str, Any] | None = None
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The plain-data form metrics.json holds; the optional parts appear only when measured."""
        optional = ("labels", "agreement", "source_label", "report")
        return {
            name: value for name, value in dataclasses.asdict(self).items() if not (name in optional and value is None)
        }


def evaluation_metrics(predictions: SplitPredictions) -> Evaluation:
    """Step 2: accuracy, macro-F1, per class, confusion matrix, agreement with people where there are votes,
    calibration, and the data-shift warning (logged too).

    Examples:
        >>> evaluation = evaluation_metrics(predict_split("default", "fer2013.zip"))     # doctest: +SKIP
        >>> round(evaluation.accuracy, 4), evaluation.calibration["ece_calibrated"]    # doctest: +SKIP
        (0.6252, 0.0264)
    """
    trained, y_true = predictions.classifier, predictions.y_true
    trained_sharpness, evaluated_sharpness = trained.card.get("train_sharpness"), sharpness(predictions.images.images)
    warnings = []
    if predictions.split == "train":
        warnings.append(
            "these are training images: a model scores higher on what it learned from, so this is no test of it."
        )
    mismatch = sharpness_mismatch(trained_sharpness or 0.0, round(evaluated_sharpness, 2))
    if mismatch:
        logger.warning("%s: %s", predictions.split, mismatch)
        warnings.append(mismatch)
    return Evaluation(
        model=trained.card.get("model", trained.path.stem),
        model_path=str(trained.path) if len(predictions.models) == 1 else [str(m) for m in predictions.models],
        data=str(predictions.data),
        split=predictions.split,
        test_time_augmentation=predictions.tta,
        **compute_metrics(y_true, predictions.y_pred, trained.class_names),
        **_agreement_metrics(predictions),
        calibration=_calibration_metrics(trained, predictions.probabilities, predictions.raw, y_true),
        sharpness={"training": trained_sharpness, "evaluated": round(evaluated_sharpness, 2)},
        warnings=warnings,
    )


def _agreement_metrics(predictions: SplitPredictions) -> dict[str, Any]:
    """What was left out and how classes met, and with a labels file the agreement with people (see
    `emolens.evaluate.agreement`): accuracy is then against the votes' majority, beside the source's own label."""
    y_pred = predictions.y_pred
    predicted = set(y_pred.tolist())
    classes = {
        **(predictions.classes.to_dict() if predictions.classes else {}),
        "never_predicted": [name for i, name in enumerate(predictions.class_names) if i not in predicted],
    }
    metrics: dict[str, Any] = {"left_out": predictions.left_out, "classes": classes}
    if predictions.labels_file:
        metrics["labels"] = {
            "file": predictions.labels_file,
            "kind": "votes" if predictions.votes is not None else "one class per image",
        }
    if predictions.votes is not None:
        metrics["agreement"] = vote_agreement(predictions.votes, predictions.probabilities)
    if predictions.source_labels is not None:
        metrics["source_label"] = source_label_accuracy(predictions.source_labels, y_pred)
    return metrics


def _calibration_metrics(
    trained: Classifier, probabilities: np.ndarray, raw: np.ndarray, y_true: np.ndarray
) -> dict[str, Any]:
    """Expected calibration error of the raw softmax and of the calibrated probabilities, and the temperature
    (None where the model, or an ensemble's member, was never calibrated)."""
    members = trained.members if isinstance(trained, EnsembleClassifier) else [trained]
    temperatures = [member.card.temperature for member in members]
    return {
        "temperature": temperatures[0] if len(members) == 1 else temperatures,
        "bins": ECE_BINS,
        "ece_raw": round(expected_calibration_error(raw, y_true), 4),
        "ece_calibrated": round(expected_calibration_error(probabilities, y_true), 4),
    }
