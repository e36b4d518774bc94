"""The classifier: ONNX exports agree with Keras and carry the card; the bundled model finds the astronaut happy."""

from __future__ import annotations

import json
import zipfile

import cv2
import numpy as np

from conftest import ASTRONAUT, FACE, astronaut_gray, gray_canvas
from emolens.constants import FER2013_CLASSES
from emolens.predict import DetectorConfig, Recognizer
from emolens.predict.detectors import crop_faces

CLASSES = list(FER2013_CLASSES)


def test_onnx_export_agrees_with_keras_on_astronaut_faces(keras_model, onnx_model):
    from emolens.models.classifier import load_classifier

    canvas = gray_canvas()
    detector = DetectorConfig().build()
    faces = np.concatenate(
        [
            crop_faces(canvas, detector.detect(canvas).boxes, detector.framing),
            crop_faces(astronaut_gray(), detector.detect(astronaut_gray()).boxes, detector.framing),
            cv2.resize(astronaut_gray()[FACE], (48, 48), interpolation=cv2.INTER_AREA)[None],
        ]
    )
    assert faces.shape == (5, 48, 48)
    expected = load_classifier(keras_model).predict(faces)
    actual = load_classifier(onnx_model).predict(faces)
    assert actual.shape == expected.shape == (5, 7)
    assert np.abs(actual - expected).max() < 1e-4
    assert np.allclose(actual.sum(axis=1), 1.0, atol=1e-5)


def test_onnx_export_agrees_with_keras_on_fer2013_test_images(keras_model, onnx_model, shared_dir):
    from emolens.data.decode import decode_image
    from emolens.models.classifier import load_classifier

    with zipfile.ZipFile(shared_dir / "data" / "fer2013.zip") as archive:
        names = [n for n in archive.namelist() if n.startswith("fer2013/test/") and not n.endswith("/")][:64]
        faces = np.stack([decode_image(archive.read(name)) for name in names])
    assert faces.shape == (64, 48, 48)
    expected = load_classifier(keras_model).predict(faces)
    actual = load_classifier(onnx_model).predict(faces)
    assert np.abs(actual - expected).max() < 1e-4


def test_exported_onnx_carries_the_card(onnx_model):
    from emolens.models.classifier import OnnxClassifier, load_classifier

    sidecar = json.loads(onnx_model.with_suffix(".json").read_text())
    classifier = load_classifier(onnx_model)
    assert isinstance(classifier, OnnxClassifier)
    for card in (sidecar, classifier.card):
        assert card["class_names"] == CLASSES
        assert card["model"] == "mini_resnet"
        assert card["train_sharpness"] == 45.0
        assert card["exported"]["by"].startswith("emolens ")
    assert classifier.class_names == CLASSES and classifier.input_size == 48


def test_bundled_model_finds_one_happy_face_on_the_astronaut():
    (result,) = Recognizer().predict(ASTRONAUT)
    assert len(result.faces) == 1
    assert result.faces[0].emotion == "happy", result.faces[0]
    assert result.faces[0].score > 0.7 and len(result.faces[0].landmarks) == 5
