"""Grad-CAM explanations: the gradient, the maps on a real face, and `predict --explain` / `evaluate --explain`."""

from __future__ import annotations

import dataclasses
import shutil

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT, run_in_fresh_python
from emolens import Recognizer
from emolens.cli import main
from emolens.models.classifier import BUNDLED_DIR


def test_backend_gradient_is_the_derivative():
    import keras

    from emolens import backend

    x = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    assert np.allclose(backend.gradient(lambda t: keras.ops.square(t) * 3.0, x), 6.0 * x)


@pytest.fixture(scope="module")
def explained():
    (result,) = Recognizer(explain=True).predict(ASTRONAUT)
    return result


def test_the_astronaut_is_happy_and_the_map_covers_the_crop_the_model_saw(explained):
    (face,) = explained.faces
    assert face.emotion == "happy"
    heat = face.explanation.heatmap
    assert heat.shape == (48, 48) and heat.dtype == np.float32 and heat.min() >= 0 and 0.9 < heat.max() <= 1
    # The bundled model sees the 44-pixel centre crop: nothing outside it can have argued.
    assert not heat[:2].any() and not heat[-2:].any() and not heat[:, :2].any() and not heat[:, -2:].any()
    # Where the heat lies is the model's own (docs/predict.md reports it per emotion for the bundled model), so this
    # only checks that the map has a shape: it is not flat over the crop.
    inside = heat[2:-2, 2:-2]
    assert inside.max() - inside.min() > 0.1
    # The crop is the face the classifier saw, and the square lies where the face was found.
    x0, y0, side = face.explanation.square
    x, y, w, h = face.box
    assert x0 < x + w / 2 < x0 + side and y0 < y + h / 2 < y0 + side and side > 0.8 * max(w, h)
    assert face.explanation.crop.shape == (48, 48) and face.explanation.crop.dtype == np.uint8


def test_other_classes_get_other_maps():
    from emolens.models.classifier import load_classifier
    from emolens.predict.explain import GradCam

    names = load_classifier().class_names
    faces = np.stack([_astronaut_crop()] * 2)
    maps = GradCam("default").heatmaps(faces, np.array([names.index("happy"), names.index("angry")]))
    assert not np.allclose(maps[0], maps[1], atol=0.05)


def _astronaut_crop() -> np.ndarray:
    from PIL import Image

    from emolens.predict.detectors import DetectorConfig, crop_faces

    gray = np.asarray(Image.open(ASTRONAUT).convert("L"))
    detector = DetectorConfig().build()
    return crop_faces(gray, detector.detect(gray).boxes, detector.framing)[0]


def test_the_annotated_picture_carries_the_heat_map(explained):
    plain = dataclasses.replace(explained.faces[0], explanation=None)
    with_heat, without = explained.plot(), explained.replace(faces=[plain]).plot()
    x0, y0, side = explained.faces[0].explanation.square
    inside = (slice(max(y0, 0), y0 + side), slice(max(x0, 0), x0 + side))
    assert np.abs(with_heat[inside].astype(int) - without[inside].astype(int)).mean() > 5
    # Outside the face's square the picture is untouched.
    assert (with_heat[-40:, :40] == without[-40:, :40]).all()


def test_predict_explain_writes_an_overlay_per_face(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(ASTRONAUT), "--explain", "--out", str(out)]) == 0
    overlay = cv2.imread(str(out / "astronaut.face1.explain.png"))
    assert overlay.shape == (192, 192, 3)
    assert (out / "astronaut.annotated.png").is_file()
    # Coloured: a gray picture has equal channels everywhere.
    assert np.abs(overlay[..., 0].astype(int) - overlay[..., 2].astype(int)).max() > 50


def test_explain_needs_an_output_folder_and_a_keras_model(tmp_path, capsys):
    assert main(["predict", str(ASTRONAUT), "--explain"]) == 2
    assert "--out" in capsys.readouterr().err
    lone = tmp_path / "lone.onnx"
    shutil.copy(BUNDLED_DIR / "default.onnx", lone)
    assert main(["predict", str(ASTRONAUT), "--model", str(lone), "--explain", "--out", str(tmp_path / "o")]) == 2
    assert "lone.keras" in capsys.readouterr().err
    # With its .keras twin beside it, the ONNX model explains through it.
    shutil.copy(BUNDLED_DIR / "default.keras", tmp_path / "lone.keras")
    assert main(["predict", str(ASTRONAUT), "--model", str(lone), "--explain", "--out", str(tmp_path / "o")]) == 0


@pytest.mark.slow
def test_evaluate_explain_adds_the_mistakes_under_their_maps(tmp_path):
    data = tmp_path / "faces"
    assert main(["data", "synth", str(data), "--train-per-class", "2", "--test-per-class", "6"]) == 0
    out = tmp_path / "evaluation"
    assert main(["evaluate", "default", str(data), "--explain", "--out", str(out)]) == 0
    assert (out / "misclassified_explained.png").stat().st_size > 0
    assert "Grad-CAM" in (out / "report.html").read_text()
    assert main(["evaluate", "default", "default", str(data), "--explain", "--out", str(out)]) == 2


def test_predict_without_explain_still_imports_no_tensorflow(tmp_path):
    done = run_in_fresh_python(["predict", str(ASTRONAUT), "--out", str(tmp_path / "out")])
    assert done.returncode == 0, done.stderr
    assert done.backend_modules == []
    assert not list((tmp_path / "out").glob("*.explain.png"))
