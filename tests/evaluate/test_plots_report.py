"""Plots write valid PNGs (edge cases included) and the HTML report is self-contained and escaped."""

from __future__ import annotations

import base64
import logging
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from emolens.evaluate.report import write_html_report
from emolens.models.calibration import reliability
from emolens.plots import plot_confusion_matrix, plot_curves, plot_image_grid, plot_reliability

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def _history(epochs: int, with_val: bool = True) -> list[dict[str, float]]:
    rows = []
    for epoch in range(1, epochs + 1):
        row = {
            "epoch": float(epoch),  # as history.csv reads back
            "accuracy": 0.3 + 0.03 * epoch,
            "loss": 1.7 - 0.05 * epoch,
            "learning_rate": 1e-3,
        }
        if with_val:
            row["val_accuracy"] = 0.3 + 0.025 * epoch - 0.004 * max(0, epoch - 6) ** 2
            row["val_loss"] = 1.75 - 0.04 * epoch
        rows.append(row)
    return rows


def assert_png(path, min_width: int = 200, min_height: int = 80) -> tuple[int, int]:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert min_width <= width <= 6000 and min_height <= height <= 6000, (width, height)
    return width, height


def assert_no_leftovers(folder) -> None:
    leftovers = [p.name for p in folder.rglob("*") if p.name.startswith(".") or ".partial" in p.name]
    assert leftovers == []


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN divisions, tight-layout complaints, deprecated calls...
        yield


@pytest.mark.parametrize(
    "history",
    [_history(12), _history(1), _history(5, with_val=False), []],
    ids=["full", "one-epoch", "no-val", "empty"],
)
def test_plot_curves_writes_png(tmp_path, history):
    path = tmp_path / "nested" / "curves.png"
    assert plot_curves(history, path) == path
    width, height = assert_png(path)
    if history:
        assert width > height  # two panels side by side
    assert_no_leftovers(tmp_path)


def test_plot_curves_single_epoch_is_visible(tmp_path):
    """One epoch must still draw a visible point (markers), not an empty axis."""
    path = plot_curves(_history(1, with_val=False), tmp_path / "one.png")
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    height, width, _ = pixels.shape
    # The middle of the accuracy panel, away from the legend: the lone train point sits there.
    middle = pixels[int(0.25 * height) : int(0.75 * height), int(0.1 * width) : int(0.45 * width)]
    train_blue = np.array([0x1F, 0x77, 0xB4])
    assert (np.abs(middle - train_blue).sum(axis=-1) < 40).sum() > 20


def test_plot_confusion_matrix_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 50, (7, 7)) + np.diag(rng.integers(100, 400, 7))
    path = plot_confusion_matrix(matrix, CLASSES, tmp_path / "cm.png", title="Test <split>")
    width, height = assert_png(path, 400, 400)
    assert 0.8 < width / height < 1.6
    assert_no_leftovers(tmp_path)


def test_plot_confusion_matrix_zero_support_row(tmp_path):
    matrix = np.array([[5, 1, 0], [0, 0, 0], [2, 0, 7]])
    assert_png(plot_confusion_matrix(matrix, ["a", "b", "c"], tmp_path / "cm.png"), 200, 200)


def test_plot_confusion_matrix_rejects_mismatched_names(tmp_path):
    with pytest.raises(ValueError):
        plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()
    assert_no_leftovers(tmp_path)


def test_plot_reliability_draws_each_curve_and_skips_empty_ones(tmp_path):
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(7) * 0.3, 500)
    labels = rng.integers(0, 7, 500)
    empty = reliability(np.zeros((0, 7)), np.zeros(0, int))
    curves = {
        "raw softmax": reliability(probabilities, labels),
        "calibrated": reliability(probabilities**0.5 / (probabilities**0.5).sum(1, keepdims=True), labels),
        "none": empty,
    }
    width, height = assert_png(
        plot_reliability(curves, tmp_path / "reliability.png", title="Reliability: test"), 300, 300
    )
    assert 0.8 < width / height < 1.4
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize("count", [1, 5, 20])
def test_plot_image_grid_writes_png(tmp_path, count):
    images = np.random.default_rng(count).integers(0, 256, (count, 48, 48), dtype=np.uint8)
    titles = [f"true: sad\npred: fear {0.5 + i / 100:.2f}" for i in range(count)]
    path = plot_image_grid(images, titles, tmp_path / "grid.png", columns=8, title="Misclassified")
    width, height = assert_png(path, 80, 80)
    if count == 20:
        assert width > height  # 8 columns x 3 rows
    assert_no_leftovers(tmp_path)


def test_plot_image_grid_empty(tmp_path):
    path = plot_image_grid(np.zeros((0, 48, 48), np.uint8), [], tmp_path / "empty.png", title="Misclassified")
    assert_png(path, 100, 50)
    assert_no_leftovers(tmp_path)


def test_plot_overwrites_existing_file(tmp_path):
    path = tmp_path / "curves.png"
    path.write_bytes(b"stale")
    plot_curves(_history(3), path)
    assert_png(path)
    assert_no_leftovers(tmp_path)


# --- HTML report -------------------------------------------------------------------------------------------


def _metrics(names: list[str]) -> dict:
    per_class = {
        n: {"precision": 0.5 + i / 100, "recall": 0.6, "f1": 0.55, "support": 100 + i} for i, n in enumerate(names)
    }
    return {
        "split": "test",
        "num_images": 3589,
        "accuracy": 0.6342,
        "macro_f1": 0.5871,
        "class_names": names,
        "per_class": per_class,
        "confusion_matrix": [[0] * len(names)] * len(names),
        "model": "seed",
    }


def test_html_report(tmp_path, caplog):
    names = [*CLASSES, "<b>"]
    curves = plot_curves(_history(4), tmp_path / "curves.png")
    cm = plot_confusion_matrix(np.eye(len(names), dtype=int) * 10, names, tmp_path / "cm.png")
    figures = {"Training curves": curves, "Missing figure": tmp_path / "nope.png", "Confusion <matrix>": cm}
    with caplog.at_level(logging.WARNING, logger="emolens"):
        path = write_html_report(
            tmp_path / "out" / "report.html",
            title="Eval <script>alert(1)</script>",
            metrics=_metrics(names),
            classification_report="              precision    recall\n       <b>       0.50      0.60\n",
            figures=figures,
            config={"model": "seed", "epochs": 30, "data": {"root": "/x & y", "fractions": [0.8, 0.2]}},
            history=_history(3),
        )
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text(encoding="utf-8")

    assert text.startswith("<!DOCTYPE html>")
    assert "63.42%" in text and "0.587" in text and "3589" in text and "seed" in text
    for name in CLASSES:
        assert f"<td>{name}</td>" in text
    # Escaping: no raw tag from data, only its escaped form.
    assert "<b>" not in text and "<script>" not in text
    assert "&lt;b&gt;" in text and "&lt;script&gt;" in text and "Confusion &lt;matrix&gt;" in text
    assert "/x &amp; y" in text
    # One embedded, decodable PNG per existing figure; the missing one is skipped with a warning.
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2
    assert base64.b64decode(images[0]) == curves.read_bytes()
    assert text.index("Training curves") < text.index("Confusion &lt;matrix&gt;")
    assert "Missing figure" not in text
    assert any("nope.png" in r.getMessage() for r in caplog.records)
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r'(href|src)="(https?:)?//', text) and "@import" not in text
    # History and config tables.
    assert "Training history" in text and "val_accuracy" in text and "learning_rate" in text
    assert "<td>1</td>" in text and "<td>1.0000</td>" not in text  # epochs are counts
    assert "Configuration" in text and "epochs" in text and "fractions" in text
    assert_no_leftovers(tmp_path)


def test_html_report_minimal(tmp_path):
    metrics = _metrics(CLASSES)
    del metrics["model"]
    path = write_html_report(tmp_path / "r.html", title="t", metrics=metrics, classification_report="", figures={})
    text = path.read_text(encoding="utf-8")
    assert "63.42%" in text and "data:image" not in text
    assert "Training history" not in text and "Configuration" not in text
    assert ">Model<" not in text


def test_report_shows_warnings(tmp_path):
    metrics = {
        "accuracy": 0.5,
        "macro_f1": 0.4,
        "num_images": 2,
        "split": "test",
        "class_names": ["a"],
        "per_class": {"a": {"precision": 1, "recall": 1, "f1": 1, "support": 2}},
        "warnings": ["the evaluated images are 19x sharper <than> the training images"],
    }
    path = write_html_report(tmp_path / "r.html", title="t", metrics=metrics, classification_report="", figures={})
    assert 'class="warning"' in path.read_text() and "19x sharper &lt;than&gt;" in path.read_text()
