"""Recognizer.predict and `emolens predict`: inputs of every kind, Results and their JSON, unreadable inputs, flags.

The photos, the untrained classifier and the JSON schema these tests use are in tests/conftest.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import (
    ASTRONAUT,
    CANVAS_SHAPE,
    MIN_FACE_FOR_THE_LARGEST,
    ROOT,
    SQUARES,
    _moving_faces_video,
    assert_boxes_in_squares,
    bomb_png,
    check_result,
    color_canvas,
    gray_canvas,
    json_lines,
    run_in_fresh_python,
    save,
)
from emolens.cli import main
from emolens.constants import FER2013_CLASSES
from emolens.predict import DetectorConfig, Face, Recognizer, Result
from emolens.predict.annotate import panel_width

CLASSES = list(FER2013_CLASSES)


def test_predict_with_the_bundled_model_imports_neither_tensorflow_nor_keras():
    done = run_in_fresh_python(["predict", str(ASTRONAUT), "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["faces"]
    assert done.backend_modules == []


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


# --- edge cases found in review ---------------------------------------------------------------------------------


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
