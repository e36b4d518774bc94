"""evaluate never scores images the model trained on or chose its checkpoint by as test results."""

from __future__ import annotations

import csv
import zipfile

import pytest

from conftest import CLASSES, class_image, png_bytes, write_tree
from emolens.cli import main
from emolens.errors import EmolensError
from emolens.evaluate import evaluate
from emolens.train import TrainConfig, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bare_zip(tmp_path_factory):
    """images/<class>/NNN.png, 20 a class, with no train/ or test/ folders: a common layout for a zip."""
    path = tmp_path_factory.mktemp("bare") / "images.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for label, name in enumerate(CLASSES):
            for index in range(20):
                archive.writestr(f"images/{name}/{index:03d}.png", png_bytes(class_image(label, index)))
    return path


@pytest.fixture(scope="module")
def bare_run(bare_zip, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    train(bare_zip, TrainConfig(epochs=1, batch_size=16, val_split=0.25), out=run, verbose=0)
    return run


def used(run, split):
    with open(run / "used_images.csv", newline="") as file:
        return [row["name"] for row in csv.DictReader(file) if row["split"] == split]


def test_the_run_lists_the_images_it_trained_and_validated_on(bare_run):
    assert len(used(bare_run, "train")) == 45 and len(used(bare_run, "val")) == 15
    assert not set(used(bare_run, "train")) & set(used(bare_run, "val"))


def test_evaluating_the_training_images_as_test_is_refused_in_one_line(bare_run, bare_zip, tmp_path, capsys):
    with pytest.raises(EmolensError, match=r"every test image of .* was used by the model's run"):
        evaluate(bare_run, bare_zip, out=tmp_path / "e")
    assert main(["evaluate", str(bare_run), str(bare_zip), "--out", str(tmp_path / "e")]) == 2
    assert "--split train" in capsys.readouterr().err


def test_split_val_scores_only_the_run_s_own_validation_images(bare_run, bare_zip, tmp_path):
    evaluation = evaluate(bare_run, bare_zip, split="val", out=tmp_path / "e")
    assert evaluation.num_images == 15 and evaluation.left_out == {f"trained on by {bare_run}": 45}
    with open(tmp_path / "e" / "predictions.csv", newline="") as file:
        assert sorted(row["file"] for row in csv.DictReader(file)) == sorted(used(bare_run, "val"))


def test_the_same_files_through_another_root_are_still_recognised(tmp_path):
    data = write_tree(tmp_path / "data", {"train": 8, "test": 2})
    (data / "test" / "happy" / "copied.png").write_bytes((data / "train" / "happy" / "000.png").read_bytes())
    run = tmp_path / "run"
    train(data, TrainConfig(epochs=1, batch_size=8, val_split=0.25), out=run, verbose=0)
    # A copy under another name is a duplicate for `data inspect`, not a file the run used: it is scored.
    assert evaluate(run, data, out=tmp_path / "e").left_out == {}
    # train/ given as a bare folder of class folders is all "test": the run's own files, so refused...
    with pytest.raises(EmolensError, match="was used by the model's run"):
        evaluate(run, data / "train", out=tmp_path / "e2")
    # ... and as "val", only the images the run validated on are scored.
    evaluation = evaluate(run, data / "train", split="val", out=tmp_path / "e3")
    assert evaluation.num_images == len(used(run, "val")) == 6 and evaluation.left_out == {f"trained on by {run}": 18}
    assert "training images" in evaluate(run, data, split="train", out=tmp_path / "e4").warnings[0]
    # With no val/ folder, --split val is the slice of train the run held out.
    evaluation = evaluate(run, data, split="val", out=tmp_path / "e5")
    assert evaluation.num_images == 6 and evaluation.left_out == {}
