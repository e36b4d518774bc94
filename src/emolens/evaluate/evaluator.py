"""Evaluating a trained model on a split: metrics, figures and one HTML report.

Writes into the run folder (or `out`):
    metrics.json               accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix,
                               expected calibration error before and after the temperature
    classification_report.txt  scikit-learn's report
    confusion_matrix.png       counts and row-normalised percentages
    reliability.png            confidence against accuracy, raw and calibrated (the card's temperature)
    misclassified.png          the most confident wrong predictions, with true and predicted labels
    misclassified_explained.png  (with explain) the same under their Grad-CAM heat maps
    predictions.csv            each image's file, true and predicted class, and calibrated class probabilities
    report.html                all of the above with the training curves, history and config
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emolens._io import spreadsheet_safe, write_json, write_text
from emolens.data.cache import load_dataset
from emolens.data.quality import sharpness, sharpness_mismatch
from emolens.data.dataset import Split
from emolens.data.sources import refuse_output_inside
from emolens.errors import EmolensError
from emolens.evaluate.agreement import source_label_accuracy, vote_agreement
from emolens.evaluate.matching import ClassMatch, match_classes, run_validation_images, scored_images, unseen_images
from emolens.evaluate.metrics import compute_metrics
from emolens.models.calibration import ECE_BINS, expected_calibration_error, reliability
from emolens.plots import plot_confusion_matrix, plot_image_grid, plot_reliability
from emolens.rundir import RunDir
from emolens.evaluate.report import write_html_report
from emolens.models.classifier import Classifier, EnsembleClassifier, load_classifiers

logger = logging.getLogger(__name__)

MISCLASSIFIED_SHOWN = 40


def _read_history(run_dir: Path | None) -> list[dict[str, float]] | None:
    if run_dir is None or not RunDir(run_dir).history.is_file():
        return None
    with open(RunDir(run_dir).history, newline="") as file:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(file)]


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

    Example:
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

    Example:
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


def evaluation_metrics(predictions: SplitPredictions) -> dict[str, Any]:
    """Step 2: the metrics dict that metrics.json holds: accuracy, macro-F1, per class, confusion matrix,
    calibration, and the data-shift warning (logged too).

    Example:
        >>> metrics = evaluation_metrics(predict_split("default", "fer2013.zip"))   # doctest: +SKIP
        >>> round(metrics["accuracy"], 4), metrics["calibration"]["ece_calibrated"]  # doctest: +SKIP
        (0.6252, 0.0264)
    """
    trained, y_true = predictions.classifier, predictions.y_true
    metrics = {
        "model": trained.card.get("model", trained.path.stem),
        "model_path": str(trained.path) if len(predictions.models) == 1 else [str(m) for m in predictions.models],
        "data": str(predictions.data),
        "split": predictions.split,
        "test_time_augmentation": predictions.tta,
        **compute_metrics(y_true, predictions.y_pred, trained.class_names),
        **_agreement_metrics(predictions),
        "calibration": _calibration_metrics(trained, predictions.probabilities, predictions.raw, y_true),
        "sharpness": {
            "training": trained.card.get("train_sharpness"),
            "evaluated": round(sharpness(predictions.images.images), 2),
        },
        "warnings": [],
    }
    if predictions.split == "train":
        metrics["warnings"].append(
            "these are training images: a model scores higher on what it learned from, so this is no test of it."
        )
    mismatch = sharpness_mismatch(metrics["sharpness"]["training"] or 0.0, metrics["sharpness"]["evaluated"])
    if mismatch:
        logger.warning("%s: %s", predictions.split, mismatch)
        metrics["warnings"].append(mismatch)
    return metrics


def write_evaluation_files(
    predictions: SplitPredictions, metrics: dict[str, Any], out: str | os.PathLike, *, explain: bool = False
) -> dict[str, Path]:
    """Step 3: metrics.json, predictions.csv, classification_report.txt and the figures, into `out`.

    Returns:
        The figures for the report, caption -> file, in the order it shows them.

    Example:
        >>> predictions = predict_split("default", "fer2013.zip")                            # doctest: +SKIP
        >>> figures = write_evaluation_files(predictions, evaluation_metrics(predictions), "out")  # doctest: +SKIP
        >>> list(figures)                                                                    # doctest: +SKIP
        ['Confusion matrix', 'Reliability (confidence against accuracy)', 'Most confident mistakes']
    """
    trained, y_true, y_pred, probabilities = (
        predictions.classifier,
        predictions.y_true,
        predictions.y_pred,
        predictions.probabilities,
    )
    names, split = trained.class_names, predictions.split
    files = RunDir(Path(out))
    files.path.mkdir(parents=True, exist_ok=True)
    write_json(files.metrics, {**metrics, "report": str(files.report)})
    write_text(files.predictions, _predictions_csv(predictions.images.names, y_true, probabilities, names))
    write_text(files.classification_report, compute_metrics(y_true, y_pred, names, output_dict=False))
    plot_confusion_matrix(
        metrics["confusion_matrix"],
        names,
        files.confusion_matrix,
        title=f"Confusion matrix: {split}, {len(y_true)} images",
    )
    curves = {"raw softmax": reliability(predictions.raw, y_true), "calibrated": reliability(probabilities, y_true)}
    plot_reliability(curves, files.reliability, title=f"Reliability: {split}, {len(y_true)} images")
    figures = {
        "Confusion matrix": files.confusion_matrix,
        "Reliability (confidence against accuracy)": files.reliability,
    }
    if trained.run_dir is not None:
        figures["Training curves"] = RunDir(trained.run_dir).curves

    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-probabilities[wrong, y_pred[wrong]])][:MISCLASSIFIED_SHOWN]
    captions = [f"true: {names[y_true[i]]}\npred: {names[y_pred[i]]} {probabilities[i, y_pred[i]]:.2f}" for i in wrong]
    faces = predictions.images.images[wrong]
    figures["Most confident mistakes"] = plot_image_grid(
        faces, captions, files.misclassified, title="Most confident mistakes"
    )
    if explain:
        caption = "Most confident mistakes, under their Grad-CAM heat maps (what argued for the wrong answer)"
        figures[caption] = _plot_explained_mistakes(trained, faces, y_pred[wrong], captions, files.explained_mistakes)
    return figures


def write_evaluation_report(
    predictions: SplitPredictions, metrics: dict[str, Any], figures: dict[str, Path], out: str | os.PathLike
) -> Path:
    """Step 4: report.html, one self-contained page with the metrics, the figures, and the run's history and config.

    Example:
        >>> metrics = evaluation_metrics(predictions)                                 # doctest: +SKIP
        >>> write_evaluation_report(predictions, metrics, write_evaluation_files(predictions, metrics, "out"), "out")  # doctest: +SKIP
        PosixPath('out/report.html')
    """
    run_dir = predictions.classifier.run_dir
    return write_html_report(
        RunDir(Path(out)).report,
        title=f"emolens: {metrics['model']} on {Path(str(predictions.data)).name} ({predictions.split})",
        metrics=metrics,
        classification_report=compute_metrics(
            predictions.y_true, predictions.y_pred, predictions.class_names, output_dict=False
        ),
        figures=figures,
        config=RunDir(run_dir).saved_config() if run_dir is not None else None,
        history=_read_history(run_dir),
    )


def evaluate(
    model: str | os.PathLike | Sequence[str | os.PathLike],
    data: str | os.PathLike,
    *,
    split: str = "test",
    out: str | os.PathLike | None = None,
    batch_size: int = 256,
    cache: bool = True,
    tta: str = "none",
    explain: bool = False,
    labels: str | os.PathLike | None = None,
    class_map: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Evaluates a trained model on one split of a dataset and writes the report files: `predict_split`,
    `evaluation_metrics`, `write_evaluation_files` and `write_evaluation_report`, which Python can call one by one.

    Args:
        model: str or path, or a list of them. A run folder, a .keras or .onnx file, or "default" (the bundled
            model); several are evaluated as one ensemble that averages their probabilities.
        data: str or path. A dataset source; it may hold only the split evaluated (e.g. just test/, or a bare
            folder of class subfolders).
        split: str. "test", "val" or "train". Defaults to "test".
        out: str or path. Where the files go. Defaults to the run folder, or `<model name>-evaluation` in the
            current folder for a model outside a run (such as the bundled one).
        batch_size: int. Images per prediction batch. Defaults to 256.
        cache: bool. Use the decoded-dataset cache. Defaults to True.
        tta: str. Test-time augmentation: "none", "flip" or "crops" (see `Classifier.views`). Defaults to "none".
        explain: bool. Also draw the most confident mistakes under their Grad-CAM heat maps (one model only; it
            loads the Keras model, see emolens.predict.explain). Defaults to False.
        labels: str or path or None. A labels file that replaces the folders' labels (see `emolens.data.labels`).
            With FER+'s votes, accuracy is against the majority (ties left out), beside the vote share and the
            accuracy against the folders' own labels. Defaults to None.
        class_map: dict or None. Dataset class -> model class, for names the common synonyms do not cover.
            Images of classes the model lacks are left out and counted. Defaults to None.

    Returns:
        The metrics dict, as written to metrics.json.

    Example:
        >>> evaluate("default", "fer2013.zip", tta="crops")["accuracy"]   # doctest: +SKIP
        0.6456
    """
    if explain and not isinstance(model, (str, os.PathLike)) and len(model) > 1:
        raise EmolensError("explanations are for one model at a time: evaluate the ensemble's members one by one.")
    predictions = predict_split(
        model, data, split=split, batch_size=batch_size, cache=cache, tta=tta, labels=labels, class_map=class_map
    )
    trained = predictions.classifier
    out_dir = Path(out) if out is not None else trained.run_dir or Path(f"{trained.path.stem}-evaluation")
    refuse_output_inside(out_dir, data)
    metrics = evaluation_metrics(predictions)
    figures = write_evaluation_files(predictions, metrics, out_dir, explain=explain)
    metrics["report"] = str(write_evaluation_report(predictions, metrics, figures, out_dir))
    logger.debug(
        "Accuracy %.4f, macro-F1 %.4f on %d %s images; report at %s",
        metrics["accuracy"],
        metrics["macro_f1"],
        len(predictions.y_true),
        split,
        metrics["report"],
    )
    return metrics


def _plot_explained_mistakes(
    trained: Classifier, faces: np.ndarray, predicted: np.ndarray, captions: list[str], path: Path
) -> Path:
    from emolens.predict.explain import GradCam
    from emolens.predict.results import Explanation

    heatmaps = GradCam(trained.path).heatmaps(faces, predicted)
    size = faces.shape[1] if len(faces) else trained.input_size
    overlays = np.array(
        [Explanation(heat, face, (0, 0, size)).plot(side=2 * size) for heat, face in zip(heatmaps, faces)]
    )
    return plot_image_grid(
        overlays.reshape(-1, 2 * size, 2 * size, 3),
        captions,
        path,
        title="Most confident mistakes: what argued for the wrong answer",
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


def _predictions_csv(
    names: Sequence[str], y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> str:
    """One row per image: file, true and predicted class, and every class's probability."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(map(spreadsheet_safe, ["file", "true", "predicted", *class_names]))
    for name, truth, row in zip(names, y_true, probabilities):
        cells = [name, class_names[truth], class_names[int(row.argmax())]]
        writer.writerow([*map(spreadsheet_safe, cells), *(f"{p:.4f}" for p in row)])
    return buffer.getvalue()
