"""`emolens data faces`: your photos' faces as a dataset, cropped exactly as prediction crops them."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ASTRONAUT, argv, group_photo, save, textures
from emolens.cli import main
from emolens.data.cache import load_dataset
from emolens.errors import EmolensError
from emolens.models.classifier import load_classifier
from emolens.predict import Recognizer, Sources, collect_faces
from emolens.predict.detectors import DetectorConfig, crop_faces


def _rows(folder):
    with open(folder / "faces.csv", newline="") as file:
        return list(csv.DictReader(file))


def _still_clip(path, photo, frames=20):
    """An MPEG-4 clip of one gray photo held for `frames` frames at 10 fps."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (photo.shape[1], photo.shape[0]))
    for _ in range(frames):
        writer.write(cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_every_face_becomes_the_crop_predict_would_classify(tmp_path, capsys):
    photo, squares = group_photo()
    sources = [save(photo, tmp_path / "group.png"), save(textures(1)[0], tmp_path / "texture.png")]
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "faces"
    assert main(["data", "faces", *map(str, sources), str(tmp_path / "broken.jpg"), "--out", str(out)]) == 1
    printed = capsys.readouterr()
    assert f"{len(squares)} faces from 2 pictures" in printed.out and "broken.jpg" in printed.err
    rows = _rows(out)
    assert len(rows) == len(squares) and {row["source"] for row in rows} == {str(sources[0])}
    detector = DetectorConfig().build()
    expected = crop_faces(photo, detector.detect(photo).boxes, detector.framing)
    for row, crop in zip(rows, expected, strict=True):
        assert row["file"].startswith("unlabelled/") and row["guess"] == ""
        assert np.array_equal(np.asarray(Image.open(out / row["file"])), crop)
        x, y, w, h = (int(row[k]) for k in "xywh")
        assert any(sx <= x + w / 2 <= sx + side and sy <= y + h / 2 <= sy + side for sx, sy, side in squares)


def test_pre_label_files_each_face_under_its_guess(tmp_path, capsys):
    out = tmp_path / "faces"
    assert main(["data", "faces", str(ASTRONAUT), "--out", str(out), "--pre-label"]) == 0
    (row,) = _rows(out)
    assert row["file"] == "train/happy/astronaut-face1.png" and row["guess"] == "happy"
    # Only classes with faces get a folder: the dataset loader refuses empty class folders.
    assert [p.name for p in (out / "train").iterdir()] == ["happy"]
    # Read back as a dataset, the crop gets the same answer: the same pixels reach the model.
    dataset = load_dataset(out, cache=False)
    probabilities = load_classifier().predict(dataset.split("train").images)
    assert probabilities[0].max() == pytest.approx(float(row["confidence"]), abs=1e-4)
    assert main(["data", "faces", str(ASTRONAUT), "--out", str(out)]) == 2
    assert "already holds collected faces" in capsys.readouterr().err


def test_videos_give_every_kth_frame(tmp_path, capsys):
    photo, squares = group_photo(angles=(0, 0))
    path = _still_clip(tmp_path / "clip.mp4", photo)
    out = tmp_path / "faces"
    assert main(["data", "faces", str(path), "--out", str(out), "--every", "5"]) == 0
    rows = _rows(out)
    assert sorted({int(row["frame"]) for row in rows}) == [0, 5, 10, 15]
    assert len(rows) == 4 * len(squares) and len({row["file"] for row in rows}) == len(rows)


# --- what collect is built on: the Recognizer's kept crops, on pictures read by the caller ---------------------


def test_kept_crops_are_the_crops_the_classifier_saw(tmp_path):
    photo, squares = group_photo(angles=(0, 10, -10))
    detector = DetectorConfig().build()
    expected = crop_faces(photo, detector.detect(photo).boxes, detector.framing)
    (result,) = Recognizer(keep_crops=True).predict(photo)
    assert len(result.faces) == len(squares) == len(expected)
    for face, crop in zip(result.faces, expected, strict=True):
        assert face.crop is not None and np.array_equal(face.crop, crop)
        assert "crop" not in face.to_dict()
    # The classifier's answer on the kept crop is the face's.
    probabilities = load_classifier().predict(np.stack([face.crop for face in result.faces]))
    assert [face.confidence for face in result.faces] == pytest.approx(probabilities.max(axis=1), abs=1e-4)
    assert all(face.crop is None for face in Recognizer().predict(photo)[0].faces)


def test_kept_crops_survive_tracking_and_smoothing(tmp_path):
    photo, squares = group_photo(angles=(0, 0))
    clip = _still_clip(tmp_path / "clip.mp4", photo, frames=6)
    results = Recognizer(keep_crops=True).predict(clip, smooth=3)
    assert [len(result.faces) for result in results] == [len(squares)] * 6
    assert all(face.crop is not None and face.crop.shape == (48, 48) for r in results for face in r.faces)


def test_predict_pictures_is_predict_on_pictures_read_elsewhere(tmp_path):
    sources = [str(ASTRONAUT), str(tmp_path / "missing.png")]
    recognizer = Recognizer(workers=2)
    given = list(recognizer.predict_pictures(Sources(sources).pictures(), errors="keep"))
    assert [r.replace(speed={}) for r in given] == [
        r.replace(speed={}) for r in recognizer.predict(sources, errors="keep")
    ]
    with pytest.raises(EmolensError, match="smooth"):
        recognizer.predict_pictures([], smooth=-1)  # checked at the call, not at the first result


def test_without_pre_label_the_model_is_not_used(tmp_path):
    summary = collect_faces([str(ASTRONAUT)], tmp_path / "faces", model=tmp_path / "no-such-model.keras")
    assert summary.faces == 1 and dict(summary.by_folder) == {"unlabelled": 1}


@pytest.mark.slow
def test_the_fine_tuning_walkthrough_runs_as_the_readme_writes_it(tmp_path, capsys):
    """docs/train.md's "Fine-tune it on your own faces", on a few dozen generated faces: some of the model's classes
    missing, one class of a single face, no test/ folder."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for index, angles in enumerate([(0, 10, -10, 5, -5), (15, -15, 0, 8, -8), (3, -3, 12, -12, 0)]):
        save(group_photo(angles=angles)[0], photos / f"party{index}.png")
    photo, _ = group_photo(angles=(0, 6, -6))
    clip = _still_clip(tmp_path / "clip.mp4", photo)
    mine = tmp_path / "my_faces"
    assert main(["data", "faces", str(photos), str(clip), "--out", str(mine), "--pre-label"]) == 0
    guessed = sorted(p.name for p in (mine / "train").iterdir())
    # "move the wrong guesses (make a folder for a class that has none)": one face into a new class folder.
    lonely = next(name for name in ("surprise", "disgust", "fear") if name not in guessed)
    (mine / "train" / lonely).mkdir()
    first = next((mine / "train" / guessed[0]).iterdir())
    first.rename(mine / "train" / lonely / first.name)
    runs = tmp_path / "runs_mine"
    capsys.readouterr()
    assert (
        main(["train", str(mine), "--recipe", "finetune", "--epochs", "4", "--freeze-epochs", "1", "--out", str(runs)])
        == 0
    )
    hint = ["evaluate", str(runs), str(mine.resolve()), "--split", "val"]  # no test/ folder: its held-out faces
    assert "Next:emolens" + "".join(hint) in "".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert main(hint) == 0  # the command train printed
    assert main(["evaluate", str(runs), str(mine), "--split", "val", "--out", str(tmp_path / "eval")]) == 0
    assert main(["predict", str(photos / "party0.png"), "--model", str(runs), "--json"]) == 0
    # A new output layer for only the classes the faces have: the single-face class still gets a split.
    assert (
        main(
            argv(
                "train {mine} --recipe finetune --new-head --epochs 3 --freeze-epochs 1 --out {new_head}",
                mine=mine,
                new_head=tmp_path / "new_head",
            )
        )
        == 0
    )
    assert "not one stratified by class" in " ".join(capsys.readouterr().err.split())
