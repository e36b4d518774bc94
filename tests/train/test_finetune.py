"""Fine-tuning: `train --from MODEL` starts from a trained model's weights and classes, `--new-head`, `--freeze-epochs`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import argv, write_tree
from emolens.cli import main
from emolens.constants import FER2013_CLASSES
from emolens.data.preprocess import to_model_input
from emolens.models import build_model
from emolens.models.saving import read_card
from emolens.train.finetune import load_start_model, transfer_weights

pytestmark = pytest.mark.slow


def test_transferred_weights_answer_as_the_model_did_in_the_data_class_order():
    source, card = load_start_model("default")
    reordered = tuple(reversed(card.class_names))
    classifier = build_model(card.model, input_shape=card.input_shape, num_classes=len(reordered))
    transfer_weights(classifier, source, card.class_names, reordered, new_head=False)
    faces = to_model_input(np.random.default_rng(0).integers(0, 256, (6, 44, 44), dtype=np.uint8))
    expected = np.asarray(source.predict_on_batch(faces))
    found = np.asarray(classifier.predict_on_batch(faces))
    assert np.allclose(found, expected[:, ::-1], atol=1e-5)
    # A new head keeps the body and starts its own output layer afresh.
    fresh = build_model(card.model, input_shape=card.input_shape, num_classes=3)
    transfer_weights(fresh, source, card.class_names, ("a", "b", "c"), new_head=True)
    assert all(
        np.array_equal(a, b) for a, b in zip(fresh.layers[1].get_weights(), source.layers[1].get_weights(), strict=True)
    )
    assert fresh.output_shape[-1] == 3


def test_data_lacking_some_classes_keeps_the_model_s_head_and_new_classes_need_a_new_one(tmp_path, capsys):
    _, default = load_start_model("default")
    data = write_tree(tmp_path / "data", {"train": 20, "test": 4})  # angry, happy, sad: a few of the model's classes
    assert (
        main(
            ["train", str(data), "--from", "default", "--epochs", "1", "--lr", "1e-5", "--out", str(tmp_path / "kept")]
        )
        == 0
    )
    assert read_card(tmp_path / "kept" / "model.keras").class_names == default.class_names
    lacking = [name for name in default.class_names if name not in ("angry", "happy", "sad")]
    logged = " ".join(capsys.readouterr().err.split())  # the CLI's log, wrapped to the terminal
    assert f"has no {', '.join(lacking)}: the model keeps them" in logged
    assert main(["train", "--resume", str(tmp_path / "kept"), "--epochs", "2"]) == 0  # the same classes again
    capsys.readouterr()

    joy = write_tree(tmp_path / "joy", {"train": 20, "test": 4}, classes=("angry", "joy"))
    assert main(["train", str(joy), "--from", "default", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "the model lacks joy" in error and "--new-head" in error
    assert (
        main(
            argv(
                "train {data} --from default --new-head --epochs 2 --freeze-epochs 1 --lr 1e-4 --out {run}",
                data=data,
                run=tmp_path / "run",
            )
        )
        == 0
    )
    card = read_card(tmp_path / "run" / "model.keras")
    assert (
        card.class_names == ("angry", "happy", "sad")
        and card.model == "mini_resnet"
        and card.input_shape == (44, 44, 1)
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert config["start_from"] == "default" and config["new_head"] and config["crop"] == 44
    with open(tmp_path / "run" / "history.csv", newline="") as file:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(file)]
    # The frozen first epoch trains the head alone at ten times the rate; then the whole net at the schedule's.
    assert rates[0] == pytest.approx(1e-3) and rates[1] < 1e-4 + 1e-12


def test_freeze_epochs_need_a_start_model(tmp_path, capsys):
    data = write_tree(tmp_path / "data", {"train": 6})
    assert main(["train", str(data), "--freeze-epochs", "2", "--out", str(tmp_path / "run")]) == 2
    assert "start_from" in capsys.readouterr().err


def test_finetune_recipe_improves_the_bundled_model_on_new_faces(tmp_path, capsys):
    """docs/train.md's measurement in small: drawn faces the bundled model never saw, 60 a class, the recipe as it is."""
    data = tmp_path / "faces"
    assert main(["data", "synth", str(data), "--train-per-class", "60", "--test-per-class", "15", "--seed", "3"]) == 0
    assert sorted(p.name for p in (data / "train").iterdir()) == sorted(
        FER2013_CLASSES
    )  # no contempt: the model keeps it
    assert main(["evaluate", "default", str(data), "--json", "--out", str(tmp_path / "before")]) == 0
    before = json.loads(capsys.readouterr().out)["accuracy"]
    assert main(["train", str(data), "--recipe", "finetune", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), str(data), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)["accuracy"]
    assert after > before + 0.15, (before, after)
