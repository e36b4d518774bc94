"""The training API on tiny data: run files, skipped-file lists, refusing to overwrite, extending a run."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from conftest import CLASSES, write_tree
from emolens.data.augment import AugmentConfig
from emolens.errors import EmolensError
from emolens.models.saving import read_card
from emolens.train import TrainConfig, resume, train

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny(tmp_path):
    root = write_tree(tmp_path / "data", {"train": 10, "test": 2})
    (root / "train" / "happy" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


def epochs_in(run):
    with open(run / "history.csv", newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def test_skipped_files_are_listed_in_the_run(tiny, tmp_path):
    result = train(tiny, TrainConfig(epochs=1, batch_size=8), out=tmp_path / "run", verbose=0)
    assert (
        (result.run_dir / "skipped_files.txt").read_text().startswith("train/happy/corrupt.png\tnot a readable image")
    )
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["data"]["skipped"] == 1 and config["class_names"] == list(CLASSES)
    assert config["config"]["precision"] in ("float32", "bf16")  # "auto" is settled when the run starts
    card = read_card(result.run_dir / "model.keras")
    assert card["class_names"] == list(CLASSES) and card["model"] == "seed" and card["epoch"] == 1


def test_a_run_folder_is_never_overwritten(tiny, tmp_path):
    train(tiny, TrainConfig(epochs=1, batch_size=8), out=tmp_path / "run", verbose=0)
    with pytest.raises(EmolensError, match="already holds a training run"):
        train(tiny, TrainConfig(epochs=1, batch_size=8), out=tmp_path / "run", verbose=0)


def test_resume_with_more_epochs_extends_a_finished_run(tiny, tmp_path):
    train(tiny, TrainConfig(epochs=1, batch_size=8, limit=4), out=tmp_path / "run", verbose=0)
    result = resume(tmp_path / "run", epochs=3, verbose=0)
    assert epochs_in(result.run_dir) == [1, 2, 3] and len(result.history) == 3
    assert json.loads((result.run_dir / "config.json").read_text())["config"]["epochs"] == 3
    assert read_card(result.run_dir / "last.keras")["training_state"]["epochs_done"] == 3


def test_resume_refuses_changed_data(tiny, tmp_path):
    train(tiny, TrainConfig(epochs=1, batch_size=8), out=tmp_path / "run", verbose=0)
    (tiny / "train" / "sad" / "000.png").unlink()
    with pytest.raises(EmolensError, match="has changed"):
        resume(tmp_path / "run", epochs=2, verbose=0)


def test_resume_accepts_the_same_data_copied_elsewhere(tiny, tmp_path):
    # A copy has new file times; resume must judge the pixels and labels, not the files' dates.
    train(tiny, TrainConfig(epochs=1, batch_size=8, limit=4), out=tmp_path / "run", verbose=0)
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy, copy_function=shutil.copy)
    result = resume(tmp_path / "run", data=copy, epochs=2, verbose=0)
    assert epochs_in(result.run_dir) == [1, 2]


def test_a_run_begun_before_content_digests_and_precision_resumes(tiny, tmp_path):
    train(tiny, TrainConfig(epochs=1, batch_size=8, limit=4), out=tmp_path / "run", verbose=0)
    config_path = tmp_path / "run" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["data"]["content_digest"], saved["config"]["precision"]  # neither was recorded then
    config_path.write_text(json.dumps(saved))
    assert epochs_in(resume(tmp_path / "run", epochs=2, verbose=0).run_dir) == [1, 2]
    assert json.loads(config_path.read_text())["config"]["precision"] == "float32"  # as such runs trained


def test_resume_clears_what_a_kill_left_half_written(tiny, tmp_path):
    train(tiny, TrainConfig(epochs=1, batch_size=8, limit=4), out=tmp_path / "run", verbose=0)
    (tmp_path / "run" / ".curves.x1y2.partial.png").write_bytes(b"half a picture")
    resume(tmp_path / "run", epochs=2, verbose=0)
    assert not list((tmp_path / "run").glob(".*partial*"))


def test_limit_caps_each_class(tiny, tmp_path):
    train(tiny, TrainConfig(epochs=1, batch_size=8, limit=3, val_split=0.2), out=tmp_path / "run", verbose=0)
    # 10 readable images per class -> 8 train and 2 val per class after the split -> capped at 3 and 2.
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert (data["train_images"], data["val_images"]) == (3 * 3, 3 * 2)


def test_training_with_every_augmentation_off(tiny, tmp_path):
    config = TrainConfig(epochs=1, batch_size=8, augment=AugmentConfig(rotation=0, shift=0, flip=False, zoom=0))
    result = train(tiny, config, out=tmp_path / "run", verbose=0)
    assert epochs_in(result.run_dir) == [1]
