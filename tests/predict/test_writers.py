"""What predict writes: annotated pictures (labels, panel) and the --out folder (faces.csv, jsonl, new formats)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT, CSV_HEADER, _read_csv, gray_canvas, group_photo, json_lines, save
from emolens.cli import main
from emolens.constants import FER2013_CLASSES
from emolens.predict import Face
from emolens.predict.annotate import annotate, label_layout, panel_width

CLASSES = list(FER2013_CLASSES)


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

    monkeypatch.setattr(formats, "_OUTPUT_FORMATS", dict(formats._formats()))  # the registration lasts this test only

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


def test_out_naming_a_file_says_it_takes_a_folder(tmp_path, capsys):
    (tmp_path / "results.csv").write_text("not a folder")
    assert main(["predict", str(ASTRONAUT), "--out", str(tmp_path / "results.csv")]) == 2
    assert "is a file: --out takes a folder" in " ".join(capsys.readouterr().err.split())
