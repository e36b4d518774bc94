"""Prediction on real photos: face detection, the Python API, `emolens predict` and `emolens export`.

Test photos are built from the committed public-domain portrait samples/astronaut.png: its face is pasted
three times, at known squares and sizes, onto a flat canvas (the drawn faces of emolens.data.synth are too
cartoonish for a detector). Detected boxes must lie inside their squares and be centred on them. Group photos
paste it turned by up to 35 degrees (Haar misses those); photos without people are blurred noise, a texture in
which Haar finds faces and YuNet, the bundled default, does not.

The classifier is an untrained mini_resnet (seeded, never trained) saved with a full emolens card and
exported to ONNX once per session: these tests check plumbing, shapes and agreement, not accuracy.
Only the two bundled-model tests need src/emolens/weights/default.onnx. The photos, the classifier fixtures and
the JSON schema are in tests/conftest.py.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import (
    ASTRONAUT,
    CANVAS_SHAPE,
    CSV_HEADER,
    FACE,
    MIN_FACE_FOR_THE_LARGEST,
    ROOT,
    SQUARES,
    _moving_faces_video,
    _read_csv,
    assert_boxes_in_squares,
    astronaut_gray,
    bomb_png,
    check_result,
    color_canvas,
    gray_canvas,
    group_photo,
    json_lines,
    save,
    textures,
)
from emolens.cli import main
from emolens.constants import FER2013_CLASSES
from emolens.predict import DetectorConfig, Face, Recognizer, Result
from emolens.predict.annotate import annotate, label_layout, panel_width
from emolens.predict.detectors import Detections, FaceDetector, Framing, crop_faces, detector_names, register_detector

CLASSES = list(FER2013_CLASSES)


def assert_one_box_per_square(boxes, squares) -> None:
    """As many boxes as squares, and each square holds the centre of exactly one box (for group photos, whose
    turned faces sit anywhere in their square)."""
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in boxes]
    assert len(boxes) == len(squares), f"expected {len(squares)} faces, found {len(boxes)}"
    for sx, sy, side in squares:
        inside = [c for c in centres if sx <= c[0] <= sx + side and sy <= c[1] <= sy + side]
        assert len(inside) == 1, f"square {(sx, sy, side)} holds {len(inside)} face centres"


# --- face detection ------------------------------------------------------------------------------------------


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
    from emolens.predict import detectors

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
        detectors._DETECTORS.pop("whole_picture")


def test_detector_config_travels_as_plain_data():
    config = DetectorConfig("haar", min_face=64, options={"score_threshold": 0.8})
    assert DetectorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# --- the classifier: Keras and ONNX agree, and the card travels ---------------------------------------------------


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


# --- the bundled model and detector, out of the box --------------------------------------------------------------


def test_bundled_model_finds_one_happy_face_on_the_astronaut():
    (result,) = Recognizer().predict(ASTRONAUT)
    assert len(result.faces) == 1
    assert result.faces[0].emotion == "happy", result.faces[0]
    assert result.faces[0].score > 0.7 and len(result.faces[0].landmarks) == 5


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


def test_predict_counts_the_faces_right_out_of_the_box(onnx_model, tmp_path, capsys):
    photo, squares = group_photo()
    paths = [save(photo, tmp_path / "group.png")] + [
        save(texture, tmp_path / f"texture{i}.png") for i, texture in enumerate(textures())
    ]
    assert main(["predict", *map(str, paths), "--json", "--model", str(onnx_model)]) == 0
    counts = [len(line["faces"]) for line in json_lines(capsys.readouterr().out)]
    assert counts == [len(squares), 0, 0, 0, 0]


# --- the Python API: one predict, Results --------------------------------------------------------------------


def test_the_api_is_importable_from_the_package():
    import emolens

    assert emolens.Recognizer is Recognizer and emolens.Result is Result and emolens.Face is Face
    assert emolens.DetectorConfig is DetectorConfig


def test_a_result_plots_serialises_saves_and_times_itself(recognizer, tmp_path):
    (result,) = recognizer.predict(ASTRONAUT)
    assert (
        isinstance(result, Result) and result.source == str(ASTRONAUT) and (result.width, result.height) == (512, 512)
    )
    assert result.faces[0].emotion in CLASSES and result.faces[0].track_id is None
    assert set(result.speed) == {"decode", "detect", "classify"} and all(ms >= 0 for ms in result.speed.values())
    check_result(json.loads(json.dumps(result.to_dict())))
    picture = result.plot()
    assert picture.shape == (512, 512 + panel_width(512, 512), 3) and picture.dtype == np.uint8
    written = result.save(tmp_path)
    assert written == tmp_path / "astronaut.annotated.png"
    assert np.array_equal(np.asarray(Image.open(written).convert("RGB")), picture)


def test_every_kind_of_input_gives_the_same_faces(recognizer, tmp_path):
    rgb = color_canvas()
    path = save(rgb, tmp_path / "colour.png")

    def faces(source, **options):
        (result,) = recognizer.predict(source, **options)
        return result.faces

    from_path = faces(path)
    assert_boxes_in_squares([face.box for face in from_path])
    assert all(isinstance(face, Face) and face.emotion in CLASSES for face in from_path)
    assert faces(str(path)) == from_path
    assert faces(path.read_bytes()) == from_path
    assert faces(Image.open(path)) == from_path
    assert faces(rgb, color="rgb") == from_path
    assert faces(np.ascontiguousarray(rgb[..., ::-1]), color="bgr") == from_path
    # The check above can tell colour orders apart: the same array read the wrong way round gives other faces.
    assert faces(rgb, color="bgr") != from_path


def test_a_colour_array_without_color_is_refused(recognizer):
    with pytest.raises(ValueError, match="color"):
        recognizer.predict(color_canvas())


def test_a_list_or_a_folder_gives_one_result_each_in_order(recognizer, photos, tmp_path):
    images = [photos["png"], photos["blank"], ASTRONAUT, photos["jpg"]]
    together = recognizer.predict(images)
    assert [result.faces for result in together] == [recognizer.predict(image)[0].faces for image in images]
    assert [len(result.faces) for result in together] == [3, 0, 1, 3]
    streamed = recognizer.predict(images, stream=True)
    assert not isinstance(streamed, list) and [r.faces for r in streamed] == [r.faces for r in together]
    folder = tmp_path / "album"
    folder.mkdir()
    for image in images:
        shutil.copy(image, folder)
    assert sorted(len(result.faces) for result in recognizer.predict(folder)) == [0, 1, 3, 3]


def test_unreadable_inputs_raise_or_are_kept(recognizer, tmp_path):
    from emolens.data.decode import UndecodableImage

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not a picture")
    with pytest.raises(UndecodableImage, match=r"notes\.png"):
        recognizer.predict(bad)
    kept = recognizer.predict([bad, ASTRONAUT, tmp_path / "missing.jpg"], errors="keep")
    assert [(r.error is None, len(r.faces)) for r in kept] == [(False, 0), (True, 1), (False, 0)]
    assert "no such file" in kept[2].error and kept[0].to_dict() == {"source": str(bad), "error": kept[0].error}


def test_a_blank_picture_has_no_faces(recognizer, photos):
    assert recognizer.predict(photos["blank"])[0].faces == []
    assert recognizer.predict(np.zeros((100, 100), np.uint8))[0].faces == []


def test_min_face_in_the_recognizer(onnx_model):
    (result,) = Recognizer(onnx_model, detector=DetectorConfig(min_face=MIN_FACE_FOR_THE_LARGEST["yunet"])).predict(
        gray_canvas()
    )
    assert_boxes_in_squares([face.box for face in result.faces], SQUARES[2:])


def test_sixteen_bit_and_cmyk_pictures_decode_and_find_the_faces(recognizer, photos):
    assert Image.open(photos["png16"]).mode.startswith("I")
    eight_bit = recognizer.predict(photos["png"])[0].faces
    sixteen_bit = recognizer.predict(photos["png16"])[0].faces
    assert [face.box for face in sixteen_bit] == [face.box for face in eight_bit]
    assert_boxes_in_squares([face.box for face in sixteen_bit])
    assert_boxes_in_squares([face.box for face in recognizer.predict(photos["cmyk"])[0].faces])


# --- pictures people can read ----------------------------------------------------------------------------------


def _area(a, b) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


@pytest.mark.parametrize("side", [36, 60, 150, 400])
def test_labels_never_cover_another_face_or_label_in_a_group_photo(recognizer, side):
    """Ten faces at 36 px (a 300 px wide photo) to 400 px (a 2,100 px one)."""
    photo, squares = group_photo(side=side)
    faces = [Face.from_probabilities((x, y, s, s), np.full(7, 1 / 7), CLASSES) for x, y, s in squares]
    texts, rectangles, _, _ = label_layout(photo.shape, faces, range(1, len(faces) + 1))
    assert texts == [f"{n} angry 0.14" for n in range(1, 11)]  # uniform: the first class
    for i, label in enumerate(rectangles):
        x0, y0, x1, y1 = label
        assert 0 <= x0 < x1 <= photo.shape[1] and 0 <= y0 < y1 <= photo.shape[0], label
        for j, face in enumerate(faces):
            x, y, w, h = face.box
            assert i == j or _area(label, (x, y, x + w, y + h)) == 0, f"label {i} covers face {j}"
        for j, other in enumerate(rectangles[:i]):
            assert _area(label, other) == 0, f"labels {i} and {j} overlap"


@pytest.mark.parametrize("count", [1, 10, 60])
def test_the_panel_holds_every_emotion_colour_however_many_faces(count):
    from emolens.constants import emotion_color

    photo, squares = group_photo(side=60, angles=(0,) * count)
    faces = [Face.from_probabilities((x, y, s, s), np.full(7, 1 / 7), CLASSES) for x, y, s in squares]
    drawn = annotate(cv2.cvtColor(photo, cv2.COLOR_GRAY2RGB), faces, CLASSES)
    panel = {tuple(pixel) for pixel in drawn[:, photo.shape[1] :].reshape(-1, 3)}
    for index, name in enumerate(CLASSES):
        value = emotion_color(name, index).lstrip("#")
        assert tuple(int(value[i : i + 2], 16) for i in (0, 2, 4)) in panel, f"no {name} in the panel for {count} faces"


def test_annotate_draws_on_a_copy_and_the_bars_beside_it(recognizer):
    rgb = cv2.cvtColor(gray_canvas(), cv2.COLOR_GRAY2RGB)
    before = rgb.copy()
    faces = recognizer.predict(rgb, color="rgb")[0].faces
    assert len(faces) == 3
    drawn = annotate(rgb, faces, CLASSES)
    height, width = rgb.shape[:2]
    assert drawn.shape == (height, width + panel_width(height, width), 3) and drawn.dtype == np.uint8
    assert not np.shares_memory(drawn, rgb)
    assert np.array_equal(rgb, before), "annotate changed its input"
    for x, y, w, h in (face.box for face in faces):
        # The middle of the box's sides: only the box's border is drawn there, and the face inside is untouched.
        assert (drawn[y + h // 2, x] != rgb[y + h // 2, x]).any()
        assert (drawn[y + h // 2, x + w] != rgb[y + h // 2, x + w]).any()
        assert np.array_equal(drawn[y + h // 2, x + w // 2], rgb[y + h // 2, x + w // 2])
    panel = drawn[:, width:]
    assert len(np.unique(panel.reshape(-1, 3), axis=0)) > 10, "the panel holds the bars"
    assert np.array_equal(annotate(rgb, [], CLASSES)[:, :width], rgb)


# --- videos: tracks, smoothing, H.264 ---------------------------------------------------------------------------


def _hard_cut_video(path: Path, fps: float = 10.0) -> Path:
    """Two people for 8 frames, then a hard cut to two others standing where they stood (another room: a
    brighter wall), for 8 frames: what a tracker matching boxes alone carries across the cut."""
    first = cv2.resize(astronaut_gray()[FACE], (120, 120), interpolation=cv2.INTER_AREA)
    second = cv2.flip(np.clip(first.astype(int) + 25, 0, 255).astype(np.uint8), 1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (CANVAS_SHAPE[1], CANVAS_SHAPE[0]))
    for index in range(16):
        canvas = np.full(CANVAS_SHAPE, 90 if index < 8 else 200, np.uint8)
        face = first if index < 8 else second
        canvas[60:180, 40 + 2 * (index % 8) : 160 + 2 * (index % 8)] = face
        canvas[300:420, 600:720] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_a_cut_to_another_shot_starts_new_tracks(recognizer, tmp_path):
    from emolens.predict.tracking import is_shot_change, shot_thumbnail

    results = recognizer.predict(_hard_cut_video(tmp_path / "cut.mp4"))
    ids = [[face.track_id for face in result.faces] for result in results]
    assert all(len(frame) == 2 and None not in frame for frame in ids), ids  # the frame at the cut too
    before, after = {i for frame in ids[:8] for i in frame}, {i for frame in ids[8:] for i in frame}
    assert len(before) == 2 and len(after) == 2 and not before & after, ids
    thumbnails = [shot_thumbnail(result.image[..., 0]) for result in results]
    changes = [is_shot_change(a, b) for a, b in pairwise(thumbnails)]
    assert changes == [False] * 7 + [True] + [False] * 7


def test_a_video_summary_per_face_is_printed_and_written_beside_faces_csv(onnx_model, tmp_path, capsys):
    video = _hard_cut_video(tmp_path / "cut.mp4")
    out = tmp_path / "out"
    assert main(["predict", str(video), "--out", str(out), "--model", str(onnx_model)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "16 frames analysed, 16 with faces, 4 faces tracked; most seen: " in printed[0]
    assert [line.split(":")[0] for line in printed[1:5]] == ["  face 1", "  face 2", "  face 3", "  face 4"]
    header, rows = _read_csv(out / "cut.tracks.csv")
    assert header[:6] == ["face", "first_seen", "last_seen", "frames", "emotion", "share"]
    assert [(row["face"], row["first_seen"], row["last_seen"], row["frames"]) for row in rows] == [
        ("1", "0.0", "0.7", "8"),
        ("2", "0.0", "0.7", "8"),
        ("3", "0.8", "1.5", "8"),
        ("4", "0.8", "1.5", "8"),
    ]
    for row in rows:
        shares = {name: float(row[name]) for name in header[6:]}
        assert sum(shares.values()) == pytest.approx(1.0) and shares[row["emotion"]] == float(row["share"]) == max(
            shares.values()
        )
    _, faces = _read_csv(out / "faces.csv")
    assert all(face["face"] == face["track_id"] for face in faces), "a video's face number is its track id"


def test_each_face_keeps_its_track_id_through_a_video(recognizer, tmp_path):
    results = recognizer.predict(_moving_faces_video(tmp_path / "two.mp4"), stream=True)
    assert not isinstance(results, list)
    results = list(results)
    assert [result.frame for result in results] == list(range(15))
    ids = [[face.track_id for face in result.faces] for result in results]
    assert all(len(frame_ids) == 2 and None not in frame_ids for frame_ids in ids), ids
    moving, still = ids[0]
    assert moving != still and all(frame_ids == [moving, still] for frame_ids in ids)
    again = recognizer.predict(tmp_path / "two.mp4")
    assert [[f.track_id for f in r.faces] for r in again] == ids, "a new predict starts the tracks anew"


def _variable_rate_video(path: Path, times: list[float]) -> Path:
    """An H.264 MP4 whose frames are shown at `times` (seconds), as phones record: no constant frame rate."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, seconds in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * index, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(seconds * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_frame_times_in_a_variable_frame_rate_video_are_its_timestamps(recognizer, tmp_path):
    times = [0.0, 0.5, 1.0, 2.0, 2.1, 3.5]  # index / (the average rate, 1.98 fps) put frame 3 at 1.52 s
    video = _variable_rate_video(tmp_path / "phone.mp4", times)
    assert [result.time for result in recognizer.predict(video)] == times
    assert [result.time for result in recognizer.predict(video, every=2)] == times[::2]


def test_a_video_with_frames_without_a_face_keeps_its_tracks_and_its_annotated_output(onnx_model, tmp_path, capsys):
    # Face, no face (someone left the picture), face: supervision's ByteTrack returns no "index" data for the
    # empty frames, which once crashed the run and lost the annotated video.
    face = cv2.resize(astronaut_gray()[FACE], (120, 120), interpolation=cv2.INTER_AREA)
    video = tmp_path / "gap.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (CANVAS_SHAPE[1], CANVAS_SHAPE[0]))
    for index in range(9):
        canvas = np.full(CANVAS_SHAPE, 128, np.uint8)
        if not 3 <= index <= 5:
            canvas[60:180, 40:160] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", str(video), "--json", "--out", str(out), "--model", str(onnx_model), "--smooth", "3"]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [len(line["faces"]) for line in lines] == [1, 1, 1, 0, 0, 0, 1, 1, 1]
    ids = {line["faces"][0]["track_id"] for line in lines if line["faces"]}
    assert len(ids) == 1 and None not in ids, "the face keeps its track across a short gap"
    assert (out / "gap.annotated.mp4").stat().st_size > 0 and (out / "gap.timeline.png").is_file()


def test_smooth_averages_each_track_over_its_last_frames():
    from emolens.predict.tracking import FaceTracker

    tracker = FaceTracker(fps=10, class_names=CLASSES, smooth=2)
    happy, sad = np.eye(7)[CLASSES.index("happy")], np.eye(7)[CLASSES.index("sad")]
    first = tracker.update([Face.from_probabilities((10, 10, 50, 50), happy * 0.9 + 0.1 / 7, CLASSES, score=0.9)])
    second = tracker.update([Face.from_probabilities((11, 10, 50, 50), sad * 0.6 + 0.4 / 7, CLASSES, score=0.9)])
    third = tracker.update([Face.from_probabilities((12, 10, 50, 50), sad * 0.6 + 0.4 / 7, CLASSES, score=0.9)])
    assert first[0].track_id == second[0].track_id == third[0].track_id is not None
    assert first[0].emotion == "happy" and second[0].emotion == "happy", "one sad frame after a clear happy one"
    assert second[0].probabilities["sad"] == pytest.approx((0.6 + 0.4 / 7 + 0.1 / 7) / 2, abs=1e-3)
    assert third[0].emotion == "sad" and third[0].confidence == pytest.approx(0.6 + 0.4 / 7, abs=1e-3)


def test_predict_video_writes_an_h264_mp4_a_timeline_per_track_and_the_csv(onnx_model, tmp_path, capsys):
    import av

    video = _moving_faces_video(tmp_path / "clip.mp4", frames=12)
    out = tmp_path / "out"
    assert main(["predict", str(video), "--every", "3", "--json", "--out", str(out), "--model", str(onnx_model)]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line["frame"] for line in lines] == [0, 3, 6, 9]
    assert [line["time"] for line in lines] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    for line in lines:
        check_result(line, video=True)
        assert line["source"] == str(video) and len(line["faces"]) == 2
    annotated = out / "clip.annotated.mp4"
    with av.open(str(annotated)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(10 / 3, rel=0.01)
        assert sum(1 for _ in container.decode(video=0)) == 4
    assert (out / "clip.timeline.png").stat().st_size > 0
    header, rows = _read_csv(out / "faces.csv")
    assert header == CSV_HEADER
    assert [int(row["frame"]) for row in rows] == [0, 0, 3, 3, 6, 6, 9, 9]
    assert len({row["track_id"] for row in rows}) == 2 and "" not in {row["track_id"] for row in rows}


def test_the_timeline_draws_a_lane_per_face_coloured_by_emotion_and_faint_when_unsure(tmp_path, monkeypatch):
    from matplotlib.colors import to_rgba

    import emolens.plots as plots
    from emolens.constants import emotion_color

    drawn = {}
    save_figure = plots._save
    monkeypatch.setattr(
        plots, "_save", lambda fig, path, **kw: drawn.setdefault("fig", fig) and save_figure(fig, path, **kw)
    )
    tracks = {
        1: (np.array([0.0, 0.1, 0.2]), np.array([3, 3, 5]), np.array([0.9, 0.5, 1.0])),
        4: (np.array([0.1, 0.2, 2.0, 2.1]), np.array([4, 4, 4, 0]), np.array([1.0, 1.0, 1.0, 1.0])),
    }
    plots.plot_emotion_timeline(tracks, CLASSES, tmp_path / "t.png")
    (ax,) = drawn["fig"].axes
    assert [label.get_text() for label in ax.get_yticklabels()] == ["face 1", "face 4"]  # in the order given, top first
    first, second = ax.collections
    assert np.allclose(
        first.get_facecolors(),
        [to_rgba(emotion_color(CLASSES[c], c), 0.2 + 0.8 * p) for c, p in ((3, 0.9), (3, 0.5), (5, 1.0))],
    )
    # Face 4 was unseen for 1.8 s: its frame at 0.2 s lasts one frame interval, not until 2.0 s.
    spans = [path.get_extents().x1 - path.get_extents().x0 for path in second.get_paths()]
    assert spans == pytest.approx([0.1, 0.1, 0.1, 0.1])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [CLASSES[i] for i in (0, 3, 4, 5)]


def test_annotated_videos_play_in_headless_chromium(onnx_model, tmp_path, browser):
    video = _moving_faces_video(tmp_path / "clip.mp4", frames=20)
    assert main(["predict", str(video), "--out", str(tmp_path / "out"), "--model", str(onnx_model)]) == 0
    (tmp_path / "out" / "play.html").write_text('<video id="v" src="clip.annotated.mp4" muted playsinline></video>')
    page = browser.new_page()
    try:
        page.goto((tmp_path / "out" / "play.html").as_uri())
        page.evaluate("document.getElementById('v').play().catch(() => {})")
        page.wait_for_function(
            "(() => { const v = document.getElementById('v'); return v.readyState === 4 || v.currentTime > 0; })()",
            timeout=20_000,
        )
        assert page.evaluate("document.getElementById('v').videoWidth") > CANVAS_SHAPE[1]
    finally:
        page.close()


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
    assert all(face["score"] > 0.7 and len(face["landmarks"]) == 5 for face in faces["faces"])
    assert blank["faces"] == []


def test_predict_min_face_flag(onnx_model, photos, capsys):
    assert (
        main(
            [
                "predict",
                str(photos["png"]),
                "--json",
                "--min-face",
                str(MIN_FACE_FOR_THE_LARGEST["yunet"]),
                "--model",
                str(onnx_model),
            ]
        )
        == 0
    )
    (line,) = json_lines(capsys.readouterr().out)
    assert_boxes_in_squares([face["box"] for face in line["faces"]], SQUARES[2:])


def test_predict_detector_flags(onnx_model, photos, shared_dir, capsys):
    base = ["predict", str(photos["png"]), "--json", "--model", str(onnx_model)]
    assert main([*base, "--detector", "haar"]) == 0
    (haar,) = json_lines(capsys.readouterr().out)
    assert all(face["score"] is None and face["landmarks"] is None for face in haar["faces"])
    # A model file alone means YuNet.
    assert main([*base, "--detector-model", str(shared_dir / "models" / "face_detection_yunet_2023mar.onnx")]) == 0
    (yunet,) = json_lines(capsys.readouterr().out)
    assert_boxes_in_squares([face["box"] for face in yunet["faces"]])
    assert all(face["score"] > 0.7 for face in yunet["faces"])
    assert main([*base, "--detector", "haar", "--detector-model", "x.onnx"]) == 2
    assert "takes no model file" in capsys.readouterr().err


def test_predict_out_writes_annotated_pictures_and_faces_csv(onnx_model, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            ["predict", str(photos["png"]), str(photos["jpg"]), "--json", "--out", str(out), "--model", str(onnx_model)]
        )
        == 0
    )
    lines = json_lines(capsys.readouterr().out)
    assert len(lines) == 2
    for source, written in (
        (photos["png"], out / "faces.annotated.png"),
        (photos["jpg"], out / "colour.annotated.jpg"),
    ):
        assert written.is_file(), sorted(p.name for p in out.iterdir())
        original = cv2.imread(str(source), cv2.IMREAD_COLOR)
        annotated = cv2.imread(str(written), cv2.IMREAD_COLOR)
        assert annotated.shape[0] == original.shape[0] and annotated.shape[1] > original.shape[1]
        picture = annotated[:, : original.shape[1]].astype(int)
        assert np.abs(picture - original.astype(int)).max() > 100, f"{written} looks unannotated"
    header, rows = _read_csv(out / "faces.csv")
    assert header == CSV_HEADER
    assert len(rows) == 6
    expected = [
        (str(line["source"]), number, face) for line in lines for number, face in enumerate(line["faces"], start=1)
    ]
    for row, (source, number, face) in zip(rows, expected, strict=True):
        assert (
            row["source"] == source
            and row["frame"] == ""
            and row["time"] == ""
            and row["track_id"] == ""
            and int(row["face"]) == number
        )
        assert [int(row[k]) for k in "xywh"] == face["box"]
        assert row["emotion"] == face["emotion"] and float(row["score"]) == pytest.approx(face["score"], abs=1e-4)
        assert float(row["confidence"]) == pytest.approx(face["confidence"], abs=1e-4)
        assert sum(float(row[name]) for name in CLASSES) == pytest.approx(1.0, abs=1e-3)
    assert not [p for p in out.iterdir() if ".partial" in p.name or p.name.startswith(".")]


def test_predict_formats_write_predictions_jsonl_beside_the_csv(onnx_model, photos, tmp_path, capsys):
    out = tmp_path / "out"
    sources = [str(photos["png"]), str(photos["blank"])]
    assert (
        main(["predict", *sources, "--json", "--out", str(out), "--formats", "jsonl,csv", "--model", str(onnx_model)])
        == 0
    )
    printed = json_lines(capsys.readouterr().out)
    written = json_lines((out / "predictions.jsonl").read_text())
    assert written == printed and [line["source"] for line in written] == sources  # the faceless picture too
    assert len(_read_csv(out / "faces.csv")[1]) == sum(len(line["faces"]) for line in written)

    assert (
        main(["predict", sources[0], "--out", str(tmp_path / "only"), "--formats", "jsonl", "--model", str(onnx_model)])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "only").iterdir() if not p.name.endswith(".png")) == ["predictions.jsonl"]
    capsys.readouterr()
    assert (
        main(
            ["predict", sources[0], "--out", str(tmp_path / "bad"), "--formats", "csv,xml", "--model", str(onnx_model)]
        )
        == 2
    )
    assert "unknown format(s) 'xml'; choose among csv, jsonl" in capsys.readouterr().err
    assert main(["predict", sources[0], "--formats", "jsonl", "--model", str(onnx_model)]) == 2
    assert "pass --out DIR too" in capsys.readouterr().err


def test_a_registered_output_format_is_written_into_the_folder(tmp_path, monkeypatch):
    """ARCHITECTURE.md's promise: a new output format is one OutputFile subclass plus one registration."""
    from emolens.predict import formats, writers
    from emolens.predict.results import Result

    monkeypatch.setattr(formats, "_OUTPUT_FORMATS", dict(formats._OUTPUT_FORMATS))

    @formats.register_output_format("names")
    class NamesFile(formats.OutputFile):
        filename = "names.txt"

        def add(self, result):
            self.lines.append(result.name)

    assert formats.output_formats() == ["csv", "jsonl", "names"]
    folder = writers.OutputFolder(tmp_path, list(CLASSES), formats=["names"])
    for name in ("a.png", "b.png"):
        folder.write(
            Result(
                source=name,
                width=8,
                height=8,
                class_names=list(CLASSES),
                name=name,
                image=np.zeros((8, 8, 3), np.uint8),
            )
        )
    folder.close()
    assert (tmp_path / "names.txt").read_text() == "a.png\nb.png\n" and not (tmp_path / "faces.csv").exists()


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
    assert {line["source"]: len(line["faces"]) for line in lines} == {
        str(expected[0]): 3,
        str(expected[1]): 3,
        str(expected[2]): 0,
    }


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


def test_a_closed_pipe_ends_predict_quietly_with_status_0(onnx_model, tmp_path):
    video = _moving_faces_video(tmp_path / "clip.mp4", frames=40)
    command = f"{sys.executable} -m emolens predict {video} --json --model {onnx_model} | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frame"] == 0
    assert done.stderr.strip() == "", done.stderr


def test_predict_shows_control_characters_in_file_names_instead_of_sending_them_to_the_terminal(
    onnx_model, tmp_path, capsys
):
    # A name holding "set the window title" and "clear the screen" sequences, and one that cannot be decoded.
    name = "a\x1b]0;owned\x07b\x1b[2J.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tmp_path / name)
    (tmp_path / "c\x1b[31m.jpg").write_bytes(b"not a picture")
    assert main(["predict", str(tmp_path), "--model", str(onnx_model)]) == 1  # one input could not be read
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "a\\x1b]0;owned\\x07b\\x1b[2J.png: no face found" in out, out
    assert "c\\x1b[31m.jpg" in err, err


def test_log_messages_show_control_characters_in_file_names_too(keras_model, tmp_path, capsys):
    from emolens.models.card import CARD_MEMBER

    cardless = tmp_path / "m\x1b[2J.keras"  # without its card, loading logs a warning that names the file
    with zipfile.ZipFile(keras_model) as source, zipfile.ZipFile(cardless, "w") as copy:
        for member in source.namelist():
            if member != CARD_MEMBER:
                copy.writestr(member, source.read(member))
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tmp_path / "grey.png")
    assert main(["predict", str(tmp_path / "grey.png"), "--model", str(cardless)]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err
    assert "m\\x1b[2J.kerashasnoemolenscard" in "".join(err.split()), err  # Rich wraps log lines anywhere


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
    # Ten times: on a 1-pixel-high input YuNet gives garbage boxes in about one call of five, not every time.
    for name in detector_names():
        for _ in range(10):
            assert detect(name, np.zeros((4, 10_000), np.uint8)).boxes.shape == (0, 4)


def test_outputs_never_collide_or_leave_the_out_folder(onnx_model, tmp_path, monkeypatch):
    folder = tmp_path / "shots" / "inner"
    folder.mkdir(parents=True)
    save(gray_canvas(), folder / "y.png")
    save(gray_canvas(), folder / "y.bmp")
    monkeypatch.chdir(folder)
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
    saved = {
        "config": {"model": "mini_resnet"},
        "class_names": ["happy", "sad"],
        "data": {"source": "faces", "fingerprint": "0"},
    }
    (run / "config.json").write_text(json.dumps(saved))
    monkeypatch.chdir(run)
    assert export_model(".", format="keras") == Path("myrun.keras") and (run / "myrun.json").is_file()


def test_predict_lists_a_folder_once_for_the_progress_bar_and_the_predictions(
    onnx_model, tmp_path, monkeypatch, capsys
):
    import emolens.predict.inputs as inputs

    folder = tmp_path / "album"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        save(gray_canvas(), folder / name)
    listed = []
    real_files = inputs._files
    monkeypatch.setattr(inputs, "_files", lambda path, *rest: listed.append(path) or real_files(path, *rest))
    assert main(["predict", str(folder), "--json", "--model", str(onnx_model)]) == 0
    assert listed == [folder]
    assert [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()] == [
        str(folder / "a.png"),
        str(folder / "b.png"),
    ]


def test_predict_reads_zip_archives_and_list_files(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(ASTRONAUT.read_bytes())
    with zipfile.ZipFile(tmp_path / "album.zip", "w") as archive:
        archive.write(ASTRONAUT, "trip/a.png")
        archive.writestr("trip/clip.mp4", b"a video")
        archive.writestr("notes.md", b"not a picture, not listed")
        archive.writestr("trip/broken.jpg", b"not a picture")
    (tmp_path / "list.txt").write_text("# photos to check\na.png\n\nalbum.zip\nmissing.jpg\nother.txt\n")
    assert main(["predict", str(tmp_path / "list.txt"), "--json", "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    lines = json_lines(captured.out)
    assert [line["source"] for line in lines] == [str(tmp_path / "a.png"), f"{tmp_path / 'album.zip'}/trip/a.png"]
    assert all(line["faces"][0]["emotion"] == "happy" for line in lines)
    for source, why in [
        ("album.zip/trip/clip.mp4", "unzip it first"),
        ("album.zip/trip/broken.jpg", "not a readable image"),
        ("missing.jpg", "no such file"),
        ("other.txt", "a list file inside a list file"),
    ]:
        assert any(
            line.startswith(f"skipped {tmp_path / source}: ") and why in line for line in captured.err.splitlines()
        ), source
    assert (tmp_path / "out" / "album" / "trip" / "a.annotated.png").is_file()


def test_conf_sets_the_detector_score_a_face_needs(capsys):
    astronaut = str(ASTRONAUT)  # YuNet scores its face 0.92
    for conf, faces in (("0.5", 1), ("0.95", 0)):
        assert main(["predict", astronaut, "--json", "--conf", conf]) == 0
        assert len(json.loads(capsys.readouterr().out)["faces"]) == faces
    assert main(["predict", astronaut, "--conf", "0.5", "--detector", "haar"]) == 2
    assert "--conf needs a detector that scores its faces" in capsys.readouterr().err


def test_list_file_errors_name_the_list_and_line_and_a_text_that_is_no_list_says_so(tmp_path, capsys):
    import shutil

    shutil.copy(ASTRONAUT, tmp_path / "a.png")
    (tmp_path / "photos.txt").write_text("# my photos\na.png\n\nmissing.png\n")
    (tmp_path / "notes.txt").write_text("Buy milk\nCall mum\n")
    assert main(["predict", str(tmp_path / "photos.txt"), str(tmp_path / "notes.txt")]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{tmp_path / 'a.png'}: 1 face")
    errors = " ".join(captured.err.split())
    assert f"missing.png: no such file or folder (line 4 of {tmp_path / 'photos.txt'})" in errors
    assert "notes.txt: not a list of image paths: none of its lines names a file or folder that exists" in errors


def test_out_naming_a_file_says_it_takes_a_folder(tmp_path, capsys):
    (tmp_path / "results.csv").write_text("not a folder")
    assert main(["predict", str(ASTRONAUT), "--out", str(tmp_path / "results.csv")]) == 2
    assert "is a file: --out takes a folder" in " ".join(capsys.readouterr().err.split())


# --- the --show window, under a virtual display --------------------------------------------------------------


@pytest.fixture(scope="module")
def virtual_display() -> Iterator[str]:
    """An X display (Xvfb) for the --show window; skipped where Xvfb is not installed (apt install xvfb)."""
    import shutil
    import time

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb): the --show window needs a display")
    number = next(
        n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.1)
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def test_the_show_window_draws_each_annotated_frame_shrunk_to_fit_and_stops_when_closed(virtual_display, monkeypatch):
    from emolens.predict.window import LiveWindow

    monkeypatch.setenv("DISPLAY", virtual_display)
    window = LiveWindow("test")
    picture = np.zeros((1600, 1000, 3), np.uint8)
    picture[:, :, 0] = 200  # red, larger than the 1280x800 screen
    window.show(picture)
    shown = window._photo
    assert (shown.width(), shown.height()) == (int(1000 * 720 / 1600), 720)  # 90% of the screen's height
    assert window.label.winfo_height() >= 720 and window.shown == 1
    assert shown._PhotoImage__photo.get(10, 10) == (200, 0, 0)
    window.root.focus_force()
    window.root.update()
    window.root.event_generate("<Escape>", when="tail")  # a key press, as the person would
    window.root.update()
    assert window.closed
    window.show(picture)
    assert window.shown == 1, "nothing is drawn once closed"
    window.close()


def test_predict_show_plays_a_video_in_a_window(virtual_display, onnx_model, tmp_path):
    video = _moving_faces_video(tmp_path / "clip.mp4", frames=6)
    command = [sys.executable, "-m", "emolens", "predict", str(video), "--show", "--model", str(onnx_model)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "DISPLAY": virtual_display}
    )
    assert done.returncode == 0, done.stderr
    assert "6 frames analysed, 6 with faces, 2 faces tracked" in done.stdout


def test_show_without_a_display_is_a_one_line_error(onnx_model, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["predict", str(ASTRONAUT), "--show", "--model", str(onnx_model)]) == 2
    assert "--show needs a display" in capsys.readouterr().err
