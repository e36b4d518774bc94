"""Face detectors: YuNet and Haar find the pasted faces, count group photos, ignore textures; errors; the package's
rooms and its registry."""

from __future__ import annotations

import json
import pkgutil

import numpy as np
import pytest

from conftest import (
    CANVAS_SHAPE,
    MIN_FACE_FOR_THE_LARGEST,
    SQUARES,
    assert_boxes_in_squares,
    gray_canvas,
    group_photo,
    json_lines,
    save,
    textures,
)
from emolens.cli import main
from emolens.predict import DetectorConfig, Recognizer, detectors
from emolens.predict.detectors import (
    Detections,
    FaceDetector,
    Framing,
    detector_names,
    list_detectors,
    register_detector,
    unregister_detector,
)


def assert_one_box_per_square(boxes, squares) -> None:
    """As many boxes as squares, and each square holds the centre of exactly one box (for group photos, whose
    turned faces sit anywhere in their square)."""
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in boxes]
    assert len(boxes) == len(squares), f"expected {len(squares)} faces, found {len(boxes)}"
    for sx, sy, side in squares:
        inside = [c for c in centres if sx <= c[0] <= sx + side and sy <= c[1] <= sy + side]
        assert len(inside) == 1, f"square {(sx, sy, side)} holds {len(inside)} face centres"


def detect(name: str, gray: np.ndarray, **settings) -> Detections:
    return DetectorConfig(name, **settings).build().detect(gray)


def test_yunet_is_the_default_and_ships_inside_the_package():
    from emolens.models.classifier import BUNDLED_DIR
    from emolens.predict.detectors.yunet import BUNDLED_MODEL

    assert (
        DetectorConfig().name == "yunet"
        and detector_names()[0] == "yunet"
        and set(detector_names()) >= {"yunet", "haar"}
    )
    assert BUNDLED_MODEL.parent == BUNDLED_DIR and BUNDLED_MODEL.stat().st_size == 232_589
    assert (BUNDLED_DIR / "LICENSE-yunet.txt").read_text().count("MIT License") == 1
    assert "sha256" in (BUNDLED_DIR / "README.md").read_text()


@pytest.mark.parametrize("name", ["yunet", "haar"])
@pytest.mark.parametrize("level", [0, 77, 128, 255])
def test_each_detector_finds_each_pasted_face_whatever_the_background(name, level):
    assert_boxes_in_squares(detect(name, gray_canvas(level)).boxes)


def test_yunet_gives_scores_and_five_landmarks_inside_each_face():
    found = detect("yunet", gray_canvas())
    assert found.scores.shape == (3,) and ((found.scores >= 0.7) & (found.scores <= 1)).all()
    assert found.landmarks.shape == (3, 5, 2)
    for (x, y, w, h), points in zip(found.boxes, found.landmarks, strict=True):
        assert ((points[:, 0] >= x) & (points[:, 0] <= x + w) & (points[:, 1] >= y) & (points[:, 1] <= y + h)).all()
        assert points[0, 1] < points[2, 1] < points[3, 1], "eyes above the nose above the mouth"


@pytest.mark.parametrize("name", ["yunet", "haar"])
def test_a_flat_picture_has_no_faces(name):
    assert detect(name, np.full(CANVAS_SHAPE, 128, np.uint8)).boxes.shape == (0, 4)


def test_yunet_counts_the_faces_of_a_group_photo_that_haar_miscounts():
    photo, squares = group_photo()
    assert_one_box_per_square(detect("yunet", photo).boxes, squares)
    assert len(detect("haar", photo)) < len(squares), "the test photo should be one Haar gets wrong"


def test_yunet_finds_no_faces_in_textures_where_haar_does():
    pictures = textures()
    assert all(len(detect("yunet", picture)) == 0 for picture in pictures)
    assert sum(len(detect("haar", picture)) for picture in pictures) >= len(pictures), "the textures should fool Haar"


@pytest.mark.parametrize("name", sorted(MIN_FACE_FOR_THE_LARGEST))
def test_min_face_drops_smaller_faces(name):
    assert_boxes_in_squares(detect(name, gray_canvas(), min_face=MIN_FACE_FOR_THE_LARGEST[name]).boxes, SQUARES[2:])


def test_detector_errors_are_one_line_emolens_errors(tmp_path):
    from emolens.errors import EmolensError

    with pytest.raises(EmolensError, match="no YuNet model"):
        DetectorConfig("yunet", model_file=str(tmp_path / "missing.onnx")).build()
    with pytest.raises(EmolensError, match="Did you mean 'haar'"):
        DetectorConfig("hair").build()
    with pytest.raises(EmolensError, match="takes no model file"):
        DetectorConfig("haar", model_file="x.onnx").build()
    with pytest.raises(EmolensError, match="min_face must be a positive number"):
        DetectorConfig(min_face=0)
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(EmolensError, match="could not load"):
        DetectorConfig("yunet", model_file=str(tmp_path / "broken.onnx")).build()


def test_a_new_detector_is_one_decorated_class(onnx_model):
    @register_detector("whole_picture", framing=Framing(scale=1.0, dy=0.0), description="the whole picture is one face")
    class WholePicture(FaceDetector):
        def _detect(self, gray, min_face):
            return np.array([[0, 0, gray.shape[1], gray.shape[0]]]), np.array([0.5]), None

    try:
        assert "whole_picture" in detector_names()
        (result,) = Recognizer(onnx_model, detector=DetectorConfig("whole_picture")).predict(
            np.zeros((60, 80), np.uint8)
        )
        assert [(face.box, face.score, face.landmarks) for face in result.faces] == [((0, 0, 80, 60), 0.5, None)]
        with pytest.raises(ValueError, match="already registered"):
            register_detector("whole_picture", framing=Framing(1.0, 0.0), description="")(WholePicture)
    finally:
        unregister_detector("whole_picture")


def test_detector_config_travels_as_plain_data():
    config = DetectorConfig("haar", min_face=64, options={"score_threshold": 0.8})
    assert DetectorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_predict_counts_the_faces_right_out_of_the_box(onnx_model, tmp_path, capsys):
    photo, squares = group_photo()
    paths = [save(photo, tmp_path / "group.png")] + [
        save(texture, tmp_path / f"texture{i}.png") for i, texture in enumerate(textures())
    ]
    assert main(["predict", *map(str, paths), "--json", "--model", str(onnx_model)]) == 0
    counts = [len(line["faces"]) for line in json_lines(capsys.readouterr().out)]
    assert counts == [len(squares), 0, 0, 0, 0]


def test_a_very_thin_strip_is_searched_without_error():
    # Ten times: on a 1-pixel-high input YuNet gives garbage boxes in about one call of five, not every time.
    for name in detector_names():
        for _ in range(10):
            assert detect(name, np.zeros((4, 10_000), np.uint8)).boxes.shape == (0, 4)


def test_every_module_of_the_package_is_a_registered_detector():
    modules = {module.name for module in pkgutil.iter_modules(detectors.__path__)}
    registered = {spec.detector.__module__.rpartition(".")[2] for spec in list_detectors()}
    assert registered == modules


def test_the_package_face_keeps_its_names():
    constants = {"DEFAULT_DETECTOR", "DEFAULT_DETECTOR_CONFIG", "DEFAULT_MIN_FACE"}
    types = {"Detections", "DetectorConfig", "DetectorSpec", "FaceDetector", "Framing"}
    functions = {"crop_faces", "crop_squares", "detector_names", "list_detectors", "register_detector"}
    assert set(detectors.__all__) >= constants | types | functions | {"unregister_detector"}
    assert all(hasattr(detectors, name) for name in detectors.__all__)


def test_a_registered_detector_can_be_unregistered():
    @register_detector("for_a_while", framing=Framing(scale=1.0, dy=0.0), description="one fixed face")
    class ForAWhile(FaceDetector):
        def _detect(self, gray, min_face):
            return np.array([[0, 0, 50, 50]]), None, None

    assert "for_a_while" in detector_names()
    assert DetectorConfig("for_a_while").build().detect(np.zeros((64, 64), np.uint8)).boxes.tolist() == [[0, 0, 50, 50]]
    unregister_detector("for_a_while")
    assert detector_names() == ["yunet", "haar"]
    with pytest.raises(ValueError, match="No detector named 'for_a_while'"):
        unregister_detector("for_a_while")
    # The name is free again.
    register_detector("for_a_while", framing=Framing(1.0, 0.0), description="")(ForAWhile)
    unregister_detector("for_a_while")


def test_built_in_detectors_stay_registered():
    for name in ("yunet", "haar"):
        with pytest.raises(ValueError, match="built-in"):
            unregister_detector(name)
    assert detector_names() == ["yunet", "haar"]
