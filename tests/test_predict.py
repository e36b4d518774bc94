"""Prediction on real photos: face detection, the Python API, `emolens predict` and `emolens export`.

Test photos are built from the committed public-domain portrait samples/astronaut.png: its face is pasted
three times, at known squares and sizes, onto a flat canvas (the drawn faces of emolens.data.synth are too
cartoonish for Haar). Detected boxes must lie inside their squares and be centred on them.

The classifier is an untrained mini_resnet (seeded, never trained) saved with a full emolens card and
exported to ONNX once per session: these tests check plumbing, shapes and agreement, not accuracy.
Only the two bundled-model tests need src/emolens/weights/default.onnx.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import bomb_png
from emolens.cli import main
from emolens.constants import FER2013_CLASSES
from emolens.predict.annotate import annotate
from emolens.predict.faces import crop_faces, make_detector
from emolens.predict.recognizer import Face, Recognizer

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "samples" / "astronaut.png"
CLASSES = list(FER2013_CLASSES)
CANVAS_SHAPE = (480, 800)  # height, width
SQUARES = ((40, 40, 140), (300, 60, 100), (560, 200, 180))  # x, y, side of each pasted face, left to right
FACE = (slice(47, 187), slice(153, 293))  # the astronaut's face: a 140 x 140 square of the portrait
BACKGROUND_RGB = (200, 90, 30)  # for colour canvases: far from gray, so RGB/BGR mix-ups change the gray levels
YUNET = "models/face_detection_yunet_2023mar.onnx"
CSV_HEADER = ["source", "frame", "time", "face", "x", "y", "w", "h", "emotion", "confidence", *CLASSES]


# --- test pictures -------------------------------------------------------------------------------------------


def astronaut_rgb() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


def astronaut_gray() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("L"))


def gray_canvas(level: int = 128, squares=SQUARES) -> np.ndarray:
    """The astronaut's gray face pasted at each square onto a flat gray canvas."""
    face = astronaut_gray()[FACE]
    canvas = np.full(CANVAS_SHAPE, level, np.uint8)
    for x, y, side in squares:
        canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return canvas


def color_canvas() -> np.ndarray:
    """The astronaut's colour face pasted at each square onto an orange canvas, as RGB."""
    face = astronaut_rgb()[FACE]
    canvas = np.empty((*CANVAS_SHAPE, 3), np.uint8)
    canvas[:] = BACKGROUND_RGB
    for x, y, side in SQUARES:
        canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return canvas


def save(pixels: np.ndarray, path: Path, **options) -> Path:
    Image.fromarray(pixels).save(path, **options)
    return path


def assert_boxes_in_squares(boxes, squares=SQUARES) -> None:
    """Exactly one box per square, left to right, each inside its square and centred on it within 15% of its side."""
    boxes = [tuple(int(v) for v in box) for box in boxes]
    assert len(boxes) == len(squares), f"expected {len(squares)} faces, found {boxes}"
    for (x, y, w, h), (sx, sy, side) in zip(boxes, squares):
        assert w > 0 and h > 0
        assert sx <= x and sy <= y and x + w <= sx + side and y + h <= sy + side, f"box {(x, y, w, h)} leaves square {(sx, sy, side)}"
        assert abs(x + w / 2 - (sx + side / 2)) <= 0.15 * side, f"box {(x, y, w, h)} off-centre in square {(sx, sy, side)}"
        assert abs(y + h / 2 - (sy + side / 2)) <= 0.15 * side, f"box {(x, y, w, h)} off-centre in square {(sx, sy, side)}"


# --- the JSON that `emolens predict --json` documents -----------------------------------------------------------

# One object per image (or analysed video frame). Video frames add "frame" (int) and "time" (float, seconds).
RESULT_SCHEMA = {"source": str, "width": int, "height": int, "faces": list}
VIDEO_SCHEMA = {"frame": int, "time": float}
# Each face: box [x, y, w, h] in the picture's pixels; emotion, one of the class names; confidence, the top
# probability; probabilities, every class name to its probability (they sum to 1).
FACE_SCHEMA = {"box": list, "emotion": str, "confidence": float, "probabilities": dict}


def _is(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def check_result(obj: dict, *, video: bool = False) -> None:
    schema = {**RESULT_SCHEMA, **(VIDEO_SCHEMA if video else {})}
    assert set(obj) == set(schema), f"keys {sorted(obj)} != {sorted(schema)}"
    for key, kind in schema.items():
        assert _is(obj[key], kind), f"{key}={obj[key]!r} is not {kind.__name__}"
    for face in obj["faces"]:
        assert set(face) == set(FACE_SCHEMA), f"face keys {sorted(face)}"
        for key, kind in FACE_SCHEMA.items():
            assert _is(face[key], kind), f"face {key}={face[key]!r} is not {kind.__name__}"
        box = face["box"]
        assert len(box) == 4 and all(_is(v, int) for v in box), box
        x, y, w, h = box
        assert w > 0 and h > 0 and 0 <= x and x + w <= obj["width"] and 0 <= y and y + h <= obj["height"], box
        assert face["emotion"] in CLASSES
        probabilities = face["probabilities"]
        assert sorted(probabilities) == sorted(CLASSES)
        assert all(_is(p, float) and 0.0 <= p <= 1.0 for p in probabilities.values())
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert 0.0 <= face["confidence"] <= 1.0
        assert face["confidence"] == max(probabilities.values()) == probabilities[face["emotion"]]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def keras_model(tmp_path_factory) -> Path:
    """An untrained, seeded mini_resnet with an emolens card (no training)."""
    import keras

    from emolens.models import build_model
    from emolens.models.saving import save_model

    keras.utils.set_random_seed(0)
    model = build_model("mini_resnet")
    model(np.zeros((1, 48, 48, 1), np.float32))
    card = {"model": "mini_resnet", "class_names": CLASSES, "input_shape": [48, 48, 1], "train_sharpness": 45.0}
    return save_model(model, tmp_path_factory.mktemp("model") / "mini.keras", card)


@pytest.fixture(scope="session")
def onnx_model(keras_model, tmp_path_factory) -> Path:
    from emolens.export import export_model

    return export_model(keras_model, tmp_path_factory.mktemp("onnx") / "mini.onnx", format="onnx")


@pytest.fixture(scope="session")
def recognizer(onnx_model) -> Recognizer:
    return Recognizer(onnx_model)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Files of the three-face canvas in several encodings, and a blank picture."""
    folder = tmp_path_factory.mktemp("photos")
    gray = gray_canvas()
    return {
        "png": save(gray, folder / "faces.png"),
        "jpg": save(color_canvas(), folder / "colour.jpg", quality=95),
        "blank": save(np.full(CANVAS_SHAPE, 128, np.uint8), folder / "blank.png"),
        "png16": save(gray.astype(np.uint16) * 257, folder / "faces16.png"),
        "cmyk": _save_cmyk(color_canvas(), folder / "cmyk.jpg"),
    }


def _save_cmyk(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).convert("CMYK").save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    return path


def _write_video(path: Path, frames: int = 12, fps: float = 10.0) -> Path:
    bgr = cv2.cvtColor(gray_canvas(), cv2.COLOR_GRAY2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (CANVAS_SHAPE[1], CANVAS_SHAPE[0]))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(bgr)
    writer.release()
    return path


def _frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    return rows[0], [dict(zip(rows[0], row)) for row in rows[1:]]


# --- face detection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 77, 128, 255])
def test_haar_finds_each_pasted_face_whatever_the_background(level):
    assert_boxes_in_squares(make_detector("haar").detect(gray_canvas(level)))


def test_yunet_finds_each_pasted_face(shared_dir):
    detector = make_detector("yunet", model_file=shared_dir / YUNET)
    assert_boxes_in_squares(detector.detect(gray_canvas()))


@pytest.mark.parametrize("kind", ["haar", "yunet"])
def test_a_flat_picture_has_no_faces(kind, request):
    model_file = request.getfixturevalue("shared_dir") / YUNET if kind == "yunet" else None
    boxes = make_detector(kind, model_file=model_file).detect(np.full(CANVAS_SHAPE, 128, np.uint8))
    assert boxes.shape == (0, 4)


def test_min_face_drops_smaller_faces():
    boxes = make_detector("haar", min_face=120).detect(gray_canvas())
    assert_boxes_in_squares(boxes, SQUARES[2:])


def test_detector_errors_are_one_line_emolens_errors(tmp_path):
    from emolens.errors import EmolensError

    with pytest.raises(EmolensError, match="model file"):
        make_detector("yunet")
    with pytest.raises(EmolensError, match="no YuNet model"):
        make_detector("yunet", model_file=tmp_path / "missing.onnx")
    with pytest.raises(EmolensError, match="unknown detector"):
        make_detector("hog")


# --- the classifier: Keras and ONNX agree, and the card travels ---------------------------------------------------


def test_onnx_export_agrees_with_keras_on_astronaut_faces(keras_model, onnx_model):
    from emolens.models.classifier import load_classifier

    canvas = gray_canvas()
    detector = make_detector("haar")
    faces = np.concatenate(
        [
            crop_faces(canvas, detector.detect(canvas), detector.framing),
            crop_faces(astronaut_gray(), detector.detect(astronaut_gray()), detector.framing),
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


# --- the bundled model (needs src/emolens/weights/default.onnx) ------------------------------------------------


def test_bundled_model_finds_one_happy_face_on_the_astronaut():
    faces = Recognizer().predict(ASTRONAUT)
    assert len(faces) == 1
    assert faces[0].emotion == "happy", faces[0]


def test_predict_with_the_bundled_model_imports_neither_tensorflow_nor_keras():
    code = (
        "import sys; from emolens.cli import main; "
        f"rc = main(['predict', {str(ASTRONAUT)!r}, '--json']); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
        "print(bad); sys.exit(rc or bool(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"stdout: {done.stdout}\nstderr: {done.stderr}"
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --- the Python API ------------------------------------------------------------------------------------------


def test_recognizer_is_importable_from_the_package():
    import emolens

    assert emolens.Recognizer is Recognizer
    from emolens import Face as PackageFace

    assert PackageFace is Face


def test_every_kind_of_input_gives_the_same_faces(recognizer, tmp_path):
    rgb = color_canvas()
    path = save(rgb, tmp_path / "colour.png")
    from_path = recognizer.predict(path)
    assert_boxes_in_squares([face.box for face in from_path])
    assert all(isinstance(face, Face) and face.emotion in CLASSES for face in from_path)
    assert recognizer.predict(str(path)) == from_path
    assert recognizer.predict(path.read_bytes()) == from_path
    assert recognizer.predict(Image.open(path)) == from_path
    assert recognizer.predict(rgb, color="rgb") == from_path
    assert recognizer.predict(np.ascontiguousarray(rgb[..., ::-1]), color="bgr") == from_path
    # The check above can tell colour orders apart: the same array read the wrong way round gives other faces.
    assert recognizer.predict(rgb, color="bgr") != from_path


def test_a_colour_array_without_color_is_refused(recognizer):
    with pytest.raises(ValueError, match="color"):
        recognizer.predict(color_canvas())


def test_predict_many_equals_predict_one_by_one(recognizer, photos):
    images = [photos["png"], photos["blank"], ASTRONAUT, photos["jpg"]]
    together = recognizer.predict_many(images)
    assert together == [recognizer.predict(image) for image in images]
    assert [len(faces) for faces in together] == [3, 0, 1, 3]


def test_a_blank_picture_has_no_faces(recognizer, photos):
    assert recognizer.predict(photos["blank"]) == []
    assert recognizer.predict(np.zeros((100, 100), np.uint8)) == []


def test_min_face_in_the_recognizer(onnx_model):
    faces = Recognizer(onnx_model, min_face=120).predict(gray_canvas())
    assert_boxes_in_squares([face.box for face in faces], SQUARES[2:])


def test_sixteen_bit_and_cmyk_pictures_decode_and_find_the_faces(recognizer, photos):
    assert Image.open(photos["png16"]).mode.startswith("I")
    eight_bit = recognizer.predict(photos["png"])
    sixteen_bit = recognizer.predict(photos["png16"])
    assert [face.box for face in sixteen_bit] == [face.box for face in eight_bit]
    assert_boxes_in_squares([face.box for face in sixteen_bit])
    assert_boxes_in_squares([face.box for face in recognizer.predict(photos["cmyk"])])


def test_annotate_draws_on_a_copy(recognizer):
    bgr = cv2.cvtColor(gray_canvas(), cv2.COLOR_GRAY2BGR)
    before = bgr.copy()
    faces = recognizer.predict(bgr, color="bgr")
    assert len(faces) == 3
    drawn = annotate(bgr, faces, CLASSES)
    assert drawn.shape == bgr.shape and drawn.dtype == np.uint8
    assert not np.shares_memory(drawn, bgr)
    assert np.array_equal(bgr, before), "annotate changed its input"
    for x, y, w, h in (face.box for face in faces):
        # The middle of the box's left edge: only the box's border is drawn there.
        assert (drawn[y + h // 2, x] != bgr[y + h // 2, x]).any()
        assert (drawn[y + h // 2, x + w] != bgr[y + h // 2, x + w]).any()
    assert np.array_equal(annotate(bgr, [], CLASSES), bgr)


# --- emolens predict -----------------------------------------------------------------------------------------


def test_predict_json_follows_the_documented_schema(onnx_model, photos, capsys):
    assert main(["predict", str(photos["png"]), str(photos["blank"]), "--json", "--model", str(onnx_model)]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["source"] for line in lines] == [str(photos["png"]), str(photos["blank"])]
    for line in lines:
        check_result(line)
    faces, blank = lines
    assert (faces["width"], faces["height"]) == (CANVAS_SHAPE[1], CANVAS_SHAPE[0])
    assert_boxes_in_squares([face["box"] for face in faces["faces"]])
    assert blank["faces"] == []


def test_predict_min_face_flag(onnx_model, photos, capsys):
    assert main(["predict", str(photos["png"]), "--json", "--min-face", "120", "--model", str(onnx_model)]) == 0
    (line,) = json_lines(capsys.readouterr().out)
    assert_boxes_in_squares([face["box"] for face in line["faces"]], SQUARES[2:])


def test_predict_yunet_flag(onnx_model, photos, shared_dir, capsys):
    argv = ["predict", str(photos["png"]), "--json", "--detector", "yunet", "--detector-model", str(shared_dir / YUNET), "--model", str(onnx_model)]
    assert main(argv) == 0
    (line,) = json_lines(capsys.readouterr().out)
    check_result(line)
    assert_boxes_in_squares([face["box"] for face in line["faces"]])


def test_predict_out_writes_annotated_pictures_and_faces_csv(onnx_model, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(photos["png"]), str(photos["jpg"]), "--json", "--out", str(out), "--model", str(onnx_model)]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert len(lines) == 2
    for source, written in ((photos["png"], out / "faces.annotated.png"), (photos["jpg"], out / "colour.annotated.jpg")):
        assert written.is_file(), sorted(p.name for p in out.iterdir())
        original = cv2.imread(str(source), cv2.IMREAD_COLOR)
        annotated = cv2.imread(str(written), cv2.IMREAD_COLOR)
        assert annotated.shape == original.shape
        assert np.abs(annotated.astype(int) - original.astype(int)).max() > 100, f"{written} looks unannotated"
    header, rows = _read_csv(out / "faces.csv")
    assert header == CSV_HEADER
    assert len(rows) == 6
    expected = [(str(line["source"]), number, face) for line in lines for number, face in enumerate(line["faces"])]
    for row, (source, number, face) in zip(rows, expected):
        assert row["source"] == source and row["frame"] == "" and row["time"] == "" and int(row["face"]) == number
        assert [int(row[k]) for k in "xywh"] == face["box"]
        assert row["emotion"] == face["emotion"]
        assert float(row["confidence"]) == pytest.approx(face["confidence"], abs=1e-4)
        assert sum(float(row[name]) for name in CLASSES) == pytest.approx(1.0, abs=1e-3)
    assert not [p for p in out.iterdir() if ".partial" in p.name or p.name.startswith(".")]


def test_predict_searches_folders_recursively(onnx_model, photos, tmp_path, capsys):
    root = tmp_path / "album"
    (root / "trip" / "day1").mkdir(parents=True)
    expected = [
        shutil.copy(photos["png"], root / "a.png"),
        shutil.copy(photos["jpg"], root / "trip" / "b.jpg"),
        shutil.copy(photos["blank"], root / "trip" / "day1" / "c.png"),
    ]
    (root / "trip" / "notes.txt").write_text("not a picture")
    assert main(["predict", str(root), "--json", "--model", str(onnx_model)]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert sorted(line["source"] for line in lines) == sorted(str(p) for p in expected)
    assert {line["source"]: len(line["faces"]) for line in lines} == {str(expected[0]): 3, str(expected[1]): 3, str(expected[2]): 0}


def test_predict_reports_each_unreadable_input_and_keeps_going(onnx_model, photos, tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = shutil.copy(photos["png"], tmp_path / "good.png")
    truncated = photos["png"].read_bytes()
    bad = {
        "x.png": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "notes.jpg": b"Meeting notes, not a picture.\n" * 20,
        "truncated.png": truncated[: len(truncated) // 2],
        "bomb.png": bomb_png(),
        "clip.mp4": rng.integers(0, 256, 8192, dtype=np.uint8).tobytes(),
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    sources = [str(tmp_path / name) for name in bad] + [str(good)]
    assert main(["predict", *sources, "--json", "--model", str(onnx_model)]) == 1
    captured = capsys.readouterr()
    lines = json_lines(captured.out)
    assert [line["source"] for line in lines] == [str(good)]
    assert len(lines[0]["faces"]) == 3
    assert "Traceback" not in captured.err
    err_lines = captured.err.splitlines()
    for name in bad:
        named = [line for line in err_lines if str(tmp_path / name) in line]
        assert len(named) == 1, f"{name} named on {len(named)} lines of stderr:\n{captured.err}"
    assert "5 input(s) could not be read" in captured.err


def test_predict_a_missing_path_is_named_and_fails(onnx_model, photos, tmp_path, capsys):
    missing = tmp_path / "nowhere.png"
    assert main(["predict", str(missing), str(photos["png"]), "--json", "--model", str(onnx_model)]) == 1
    captured = capsys.readouterr()
    assert len(json_lines(captured.out)) == 1
    assert len([line for line in captured.err.splitlines() if str(missing) in line]) == 1
    assert "Traceback" not in captured.err


def test_predict_without_sources_or_camera_is_a_usage_error(onnx_model, capsys):
    assert main(["predict", "--model", str(onnx_model)]) == 2
    assert "nothing to predict" in capsys.readouterr().err


def test_predict_a_missing_camera_is_a_one_line_error(onnx_model, capfd):
    # capfd, not capsys: OpenCV would write its own warnings to file descriptor 2, beneath Python.
    assert main(["predict", "--camera", "7", "--model", str(onnx_model)]) == 2
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "camera 7" in err[0], err


def test_predict_yunet_without_its_model_file_is_a_usage_error(onnx_model, photos, capsys):
    assert main(["predict", str(photos["png"]), "--detector", "yunet", "--model", str(onnx_model)]) == 2
    err = capsys.readouterr().err
    assert "--detector-model" in err and "Traceback" not in err


def test_predict_video_every_third_frame(onnx_model, tmp_path, capsys):
    video = _write_video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    assert main(["predict", str(video), "--every", "3", "--json", "--out", str(out), "--model", str(onnx_model)]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["frame"] for line in lines] == [0, 3, 6, 9]
    assert [line["time"] for line in lines] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    for line in lines:
        check_result(line, video=True)
        assert line["source"] == str(video)
        assert_boxes_in_squares([face["box"] for face in line["faces"]])
    annotated = out / "clip.annotated.mp4"
    assert annotated.is_file() and _frame_count(annotated) == 12
    assert (out / "clip.timeline.png").stat().st_size > 0
    header, rows = _read_csv(out / "faces.csv")
    assert header == CSV_HEADER
    assert len(rows) == 12
    assert [int(row["frame"]) for row in rows] == [0] * 3 + [3] * 3 + [6] * 3 + [9] * 3
    assert all(row["time"] != "" for row in rows)


# --- emolens export ------------------------------------------------------------------------------------------


def test_export_cli_writes_onnx_and_its_card(keras_model, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(keras_model, run / "model.keras")
    for model in (keras_model, run):
        out = tmp_path / f"{Path(model).stem}.onnx"
        assert main(["export", str(model), "--format", "onnx", "--out", str(out)]) == 0
        assert out.stat().st_size > 0
        card = json.loads(out.with_suffix(".json").read_text())
        assert card["class_names"] == CLASSES and card["model"] == "mini_resnet"


def test_export_refuses_an_onnx_file(onnx_model, tmp_path, capsys):
    out = tmp_path / "again.onnx"
    assert main(["export", str(onnx_model), "--out", str(out)]) == 2
    assert "already exported" in capsys.readouterr().err
    assert not out.exists()


def test_export_refuses_an_out_file_with_the_wrong_suffix(keras_model, tmp_path, capsys):
    out = tmp_path / "model.keras"
    assert main(["export", str(keras_model), "--format", "onnx", "--out", str(out)]) == 2
    assert ".onnx" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".json").exists()


# --- edge cases found in review ---------------------------------------------------------------------------------


def test_a_very_thin_strip_is_searched_without_error():
    assert make_detector("haar").detect(np.zeros((4, 10_000), np.uint8)).shape == (0, 4)


def test_outputs_never_collide_or_leave_the_out_folder(onnx_model, tmp_path, monkeypatch):
    from emolens.predict.pipeline import expand_sources

    folder = tmp_path / "shots" / "inner"
    folder.mkdir(parents=True)
    save(gray_canvas(), folder / "y.png")
    save(gray_canvas(), folder / "y.bmp")
    monkeypatch.chdir(folder)
    inputs, _ = expand_sources([".."])
    assert all(not item.name.startswith("..") for item in inputs) and {item.name for item in inputs} == {"shots/inner/y.png", "shots/inner/y.bmp"}
    out = tmp_path / "out"
    assert main(["predict", "..", "--model", str(onnx_model), "--out", str(out)]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["shots/inner/y-2.annotated.png", "shots/inner/y.annotated.png"]
    assert not (tmp_path / "shots" / "y.annotated.png").exists()
    with open(out / "faces.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == 6  # flushed at the end: both pictures' three faces


def test_export_names_the_file_after_the_run_folder_it_is_run_in(keras_model, tmp_path, monkeypatch):
    from emolens.export import export_model

    run = tmp_path / "myrun"
    run.mkdir()
    shutil.copy(keras_model, run / "model.keras")
    (run / "config.json").write_text(json.dumps({"config": {"model": "mini_resnet"}, "data": {}}))
    monkeypatch.chdir(run)
    assert export_model(".", format="keras") == Path("myrun.keras") and (run / "myrun.json").is_file()
