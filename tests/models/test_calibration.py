"""Temperature scaling and calibration error: the maths, the card that carries T, and `emolens calibrate`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from emolens.cli import main
from emolens.errors import EmolensError
from emolens.models.calibration import (
    apply_class_scale,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability,
)
from emolens.models.card import ModelCard, write_card
from emolens.models.classifier import BUNDLED_DIR, load_classifier


def _softmax(logits: np.ndarray) -> np.ndarray:
    scaled = np.exp(logits - logits.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def _overconfident(n: int = 20000, sharpen: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), and a model that reports softmax(sharpen * z): over-confident by `sharpen`."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 7))
    truth = _softmax(logits)
    labels = np.array([rng.choice(7, p=row) for row in truth])
    return _softmax(sharpen * logits), labels


def test_temperature_keeps_the_winner_and_sums_to_one():
    probabilities = _softmax(np.random.default_rng(1).normal(0, 2, (50, 7)))
    for temperature in (0.5, 1.0, 2.5):
        scaled = apply_temperature(probabilities, temperature)
        assert np.allclose(scaled.sum(axis=1), 1, atol=1e-5)
        assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert np.allclose(apply_temperature(probabilities, 1.0), probabilities, atol=1e-6)
    # Above 1 softens, below 1 sharpens.
    assert (
        apply_temperature(probabilities, 2.5).max(axis=1).mean()
        < probabilities.max(axis=1).mean()
        < apply_temperature(probabilities, 0.5).max(axis=1).mean()
    )


def test_fit_recovers_a_known_over_confidence():
    probabilities, labels = _overconfident(sharpen=3.0)
    temperature = fit_temperature(probabilities, labels)
    assert temperature == pytest.approx(3.0, rel=0.05)
    assert (
        expected_calibration_error(apply_temperature(probabilities, temperature), labels)
        < 0.02
        < expected_calibration_error(probabilities, labels)
    )
    # A calibrated model is left alone.
    calibrated, labels = _overconfident(sharpen=1.0, seed=2)
    assert fit_temperature(calibrated, labels) == pytest.approx(1.0, rel=0.05)


def test_reliability_bins_by_top_probability():
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 1, 0, 0, 0, 1])
    curve = reliability(probabilities, labels, bins=10)
    assert sum(curve["count"]) == 6 and curve["count"][9] == 2 and curve["count"][5] == 4
    assert curve["accuracy"][9] == 0.5 and curve["accuracy"][5] == 0.75
    assert curve["confidence"][0] is None
    assert curve["ece"] == pytest.approx((2 * abs(0.5 - 0.95) + 4 * abs(0.75 - 0.55)) / 6)


def test_the_card_carries_a_positive_temperature():
    card = ModelCard(class_names=("a", "b"), temperature=1.5)
    assert ModelCard.from_dict(card.to_dict(), "m.keras").temperature == 1.5
    assert "temperature" not in ModelCard(class_names=("a", "b")).to_dict()
    for bad in (0, -1.0, "1.5", True):
        with pytest.raises(EmolensError, match="temperature"):
            ModelCard.from_dict({"class_names": ["a", "b"], "temperature": bad}, "m.keras")


@pytest.mark.parametrize("name", ["default.onnx", "default.keras"])
def test_write_card_changes_the_confidence_not_the_network(name, tmp_path):
    path = tmp_path / name
    shutil.copy(BUNDLED_DIR / name, path)
    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    before = load_classifier(path)
    raw = before.predict(faces, calibrated=False)
    # The bundled model's, fitted on FER2013 validation: the same in the model file and in default.json.
    assert before.temperature == pytest.approx(json.loads((BUNDLED_DIR / "default.json").read_text())["temperature"])
    write_card(path, ModelCard.from_dict({**before.card.to_dict(), "temperature": 2.0}, path))
    after = load_classifier(path)
    assert after.temperature == 2.0 and after.card.class_names == before.card.class_names
    assert np.allclose(after.predict(faces, calibrated=False), raw, atol=1e-6)
    calibrated = after.predict(faces)
    assert np.allclose(calibrated, apply_class_scale(apply_temperature(raw, 2.0), before.class_scale), atol=1e-6)
    assert not np.allclose(calibrated, raw, atol=1e-3)
    assert not list(tmp_path.glob("*.partial*"))


def test_a_class_scale_in_the_card_moves_decisions_not_the_network(tmp_path):
    path = tmp_path / "default.onnx"
    shutil.copy(BUNDLED_DIR / "default.onnx", path)
    faces = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    before = load_classifier(path)
    neutral = before.class_names.index("neutral")
    write_card(path, ModelCard.from_dict({**before.card.to_dict(), "class_scale": {"neutral": 0.2}}, path))
    after = load_classifier(path)
    assert after.card.class_scale == {"neutral": 0.2} and np.allclose(
        after.predict(faces, calibrated=False), before.predict(faces, calibrated=False)
    )
    # The new scale replaces the card's own (the bundled model's neutral x 0.7): it acts on the temperature's output.
    expected = (
        apply_temperature(before.predict(faces, calibrated=False), before.temperature)
        * np.where(np.arange(len(before.class_names)) == neutral, 0.2, 1.0)[None]
    )
    assert np.allclose(after.predict(faces), expected / expected.sum(axis=1, keepdims=True), atol=1e-6)
    assert (after.predict(faces)[:, neutral] < before.predict(faces)[:, neutral]).all()
    assert apply_class_scale(before.predict(faces), None) is not None
    for bad in ({"joy": 0.5}, {"neutral": 0}, {"neutral": "0.5"}, ["neutral"]):
        with pytest.raises(EmolensError, match="class_scale"):
            ModelCard.from_dict({**before.card.to_dict(), "class_scale": bad}, path)


@pytest.mark.slow
def test_calibrate_writes_the_temperature_into_an_onnx_model(tmp_path, capsys):
    data = tmp_path / "faces"
    assert main(["data", "synth", str(data), "--train-per-class", "40", "--test-per-class", "5"]) == 0
    model = tmp_path / "model.onnx"
    shutil.copy(BUNDLED_DIR / "default.onnx", model)
    shutil.copy(BUNDLED_DIR / "default.json", tmp_path / "model.json")  # the card copy export writes beside
    capsys.readouterr()
    assert main(["calibrate", str(model), str(data)]) == 0
    printed = capsys.readouterr().out
    assert "Temperature" in printed and "28 validation images" in printed  # 10% of 7 x 40
    card = load_classifier(model).card
    assert card.temperature is not None and card.temperature != 1.0
    assert card["calibration"]["images"] == 28
    assert card["calibration"]["nll_after"] <= card["calibration"]["nll_before"]
    assert json.loads((tmp_path / "model.json").read_text())["temperature"] == card.temperature
    metrics_out = tmp_path / "evaluation"
    assert main(["evaluate", str(model), str(data), "--split", "test", "--out", str(metrics_out)]) == 0
    metrics = json.loads((metrics_out / "metrics.json").read_text())
    assert metrics["calibration"]["temperature"] == card.temperature
    # A class scale chosen on validation rides along in the card, and evaluate applies it.
    assert main(["calibrate", str(model), str(data), "--class-scale", "neutral=0.5"]) == 0
    assert load_classifier(model).card.class_scale == {"neutral": 0.5}
    assert json.loads((tmp_path / "model.json").read_text())["class_scale"] == {"neutral": 0.5}
    capsys.readouterr()
    for bad, words in (
        ("neutral=lots", "with numbers"),
        ("joy=0.5", "which the model lacks"),
        ("neutral", "NAME=VALUE"),
    ):
        assert main(["calibrate", str(model), str(data), "--class-scale", bad]) == 2
        assert words in capsys.readouterr().err
    assert (metrics_out / "reliability.png").is_file()
    assert "Calibration error" in (metrics_out / "report.html").read_text()


def test_calibrate_refuses_data_with_classes_the_model_lacks(tmp_path, capsys):
    from conftest import write_tree

    data = write_tree(tmp_path / "data", {"train": 12}, classes=("angry", "bored"))
    model = tmp_path / "model.onnx"
    shutil.copy(BUNDLED_DIR / "default.onnx", model)
    assert main(["calibrate", str(model), str(data)]) == 2
    assert "bored" in capsys.readouterr().err


def test_the_docstring_examples_hold():
    import doctest

    from emolens.models import calibration

    assert doctest.testmod(calibration).failed == 0


@pytest.mark.slow
def test_evaluate_is_four_steps_python_can_call_one_by_one(tmp_path):
    from emolens.evaluate import (
        evaluate,
        evaluation_metrics,
        predict_split,
        write_evaluation_files,
        write_evaluation_report,
    )

    data = tmp_path / "faces"
    assert main(["data", "synth", str(data), "--train-per-class", "2", "--test-per-class", "8"]) == 0
    predictions = predict_split("default", data, tta="flip")
    assert predictions.probabilities.shape == (56, len(load_classifier().class_names)) and len(predictions.y_true) == 56
    evaluation = evaluation_metrics(predictions)
    assert evaluation.accuracy == pytest.approx(float((predictions.y_pred == predictions.y_true).mean()))
    figures = write_evaluation_files(predictions, evaluation, tmp_path / "steps")
    assert all(path.is_file() for path in figures.values()) and (tmp_path / "steps" / "metrics.json").is_file()
    report = write_evaluation_report(predictions, evaluation, figures, tmp_path / "steps")
    assert report.read_text().count("data:image/png;base64,") == len(figures)
    whole = evaluate("default", data, tta="flip", out=tmp_path / "whole")
    assert whole.accuracy == evaluation.accuracy and whole.calibration == evaluation.calibration
    assert whole.to_dict() == json.loads((tmp_path / "whole" / "metrics.json").read_text())


def test_a_temperature_fitted_to_vote_shares_makes_confidence_the_share_of_people():
    # Every face: the model says 0.95 for class 0, while 70% of annotators chose it.
    raw = np.tile([[0.95, 0.05]], (200, 1))
    votes = np.tile([[0.7, 0.3]], (200, 1))
    temperature = fit_temperature(raw, votes)
    assert temperature > 1 and apply_temperature(raw, temperature)[0, 0] == pytest.approx(0.7, abs=0.01)
    assert fit_temperature(raw, np.zeros(200, int)) < 1  # against the majority alone it would sharpen instead
