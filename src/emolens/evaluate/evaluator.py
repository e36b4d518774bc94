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
import dataclasses
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from emolens._io import spreadsheet_safe, write_json, write_text
from emolens.data.sources import refuse_output_inside
from emolens.errors import EmolensError
from emolens.evaluate.evaluation import Evaluation, evaluation_metrics
from emolens.evaluate.metrics import compute_metrics
from emolens.evaluate.predictions import SplitPredictions, predict_split
from emolens.evaluate.report import write_html_report
from emolens.models.calibration import reliability
from emolens.models.classifier import Classifier
from emolens.plots import plot_confusion_matrix, plot_image_grid, plot_reliability
from emolens.rundir import RunDir
from emolens.train.record import RunRecord

logger = logging.getLogger(__name__)

MISCLASSIFIED_SHOWN = 40


def _read_history(run_dir: Path | None) -> list[dict[str, float]] | None:
    if run_dir is None or not RunDir(run_dir).history.is_file():
        return None
    with open(RunDir(run_dir).history, newline="") as file:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(file)]


def write_evaluation_files(
    predictions: SplitPredictions, evaluation: Evaluation, out: str | os.PathLike, *, explain: bool = False
) -> dict[str, Path]:
    """Step 3: metrics.json, predictions.csv, classification_report.txt and the figures, into `out`.

    Returns:
        The figures for the report, caption -> file, in the order it shows them.

    Examples:
        >>> predictions = predict_split("default", "fer2013.zip")                            # doctest: +SKIP
        >>> figures = write_evaluation_files(predictions, evaluation_metrics(predictions), "out")   # doctest: +SKIP
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
    write_json(files.metrics, dataclasses.replace(evaluation, report=str(files.report)).to_dict())
    write_text(files.predictions, _predictions_csv(predictions.images.names, y_true, probabilities, names))
    write_text(files.classification_report, compute_metrics(y_true, y_pred, names, output_dict=False))
    plot_confusion_matrix(
        evaluation.confusion_matrix,
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
    predictions: SplitPredictions, evaluation: Evaluation, figures: dict[str, Path], out: str | os.PathLike
) -> Path:
    """Step 4: report.html, one self-contained page with the metrics, the figures, and the run's history and config.

    Examples:
        >>> evaluation = evaluation_metrics(predictions)                                          # doctest: +SKIP
        >>> figures = write_evaluation_files(predictions, evaluation, "out")                       # doctest: +SKIP
        >>> write_evaluation_report(predictions, evaluation, figures, "out")                      # doctest: +SKIP
        PosixPath('out/report.html')
    """
    run_dir = predictions.classifier.run_dir
    return write_html_report(
        RunDir(Path(out)).report,
        title=f"emolens: {evaluation.model} on {Path(str(predictions.data)).name} ({predictions.split})",
        metrics=evaluation.to_dict(),
        classification_report=compute_metrics(
            predictions.y_true, predictions.y_pred, predictions.class_names, output_dict=False
        ),
        figures=figures,
        config=RunRecord.read(run_dir).to_dict() if run_dir is not None else None,
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
) -> Evaluation:
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
        An `Evaluation`: every figure measured, with the report's path; `to_dict()` is metrics.json.

    Examples:
        >>> evaluate("default", "fer2013.zip", tta="crops").accuracy   # doctest: +SKIP
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
    evaluation = evaluation_metrics(predictions)
    figures = write_evaluation_files(predictions, evaluation, out_dir, explain=explain)
    report = write_evaluation_report(predictions, evaluation, figures, out_dir)
    logger.debug(
        "Accuracy %.4f on %d %s images; report at %s", evaluation.accuracy, evaluation.num_images, split, report
    )
    return dataclasses.replace(evaluation, report=str(report))


def _plot_explained_mistakes(
    trained: Classifier, faces: np.ndarray, predicted: np.ndarray, captions: list[str], path: Path
) -> Path:
    from emolens.predict.explain import GradCam
    from emolens.predict.results import Explanation

    heatmaps = GradCam(trained.path).heatmaps(faces, predicted)
    size = faces.shape[1] if len(faces) else trained.input_size
    overlays = np.array(
        [Explanation(heat, face, (0, 0, size)).plot(side=2 * size) for heat, face in zip(heatmaps, faces, strict=True)]
    )
    return plot_image_grid(
        overlays.reshape(-1, 2 * size, 2 * size, 3),
        captions,
        path,
        title="Most confident mistakes: what argued for the wrong answer",
    )


def _predictions_csv(
    names: Sequence[str], y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> str:
    """One row per image: file, true and predicted class, and every class's probability."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(map(spreadsheet_safe, ["file", "true", "predicted", *class_names]))
    for name, truth, row in zip(names, y_true, probabilities, strict=True):
        cells = [name, class_names[truth], class_names[int(row.argmax())]]
        writer.writerow([*map(spreadsheet_safe, cells), *(f"{p:.4f}" for p in row)])
    return buffer.getvalue()
