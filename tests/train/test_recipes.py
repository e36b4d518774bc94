"""Recipes, optimizers, schedules, class weights and the plateau schedule's resumable state."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from conftest import ROOT, argv, write_tree
from emolens.cli import main
from emolens.errors import EmolensError
from emolens.models.saving import load_model, read_card, save_model
from emolens.train.config import TrainConfig
from emolens.train.optim import PlateauSchedule, class_weights, make_optimizer
from emolens.train.recipes import RECIPES, recipe_config, recipe_settings
from emolens.train.state import PlateauState, RunState
from emolens.train.trainer import build_trainer


def test_the_docs_describe_every_recipe():
    """docs/train.md's table of recipes is written by hand (with what each measured): it names each, no more."""
    section = (ROOT / "docs" / "train.md").read_text(encoding="utf-8").split("\n| recipe | model | what |\n", 1)[1]
    rows = [line for line in section.split("\n\n", 1)[0].splitlines() if line.startswith("| `")]
    assert sorted(row.split("|")[1].strip().strip("`") for row in rows) == sorted(RECIPES)


def test_every_recipe_is_a_valid_config_of_a_registered_model():
    from emolens.models import get_model_spec

    for name in RECIPES:
        config = recipe_config(name)
        assert get_model_spec(config.model).name == config.model
        assert config.to_dict()["epochs"] == RECIPES[name]["epochs"]


def test_seed_recipe_is_the_notebook_and_the_plain_defaults():
    seed = recipe_config("seed")
    assert seed.learning_rate == 1e-4 and seed.optimizer == "adam" and seed.schedule == "inverse_time"
    # Without --recipe, training gets the same run, with the seed model's own learning rate filled in later.
    from dataclasses import replace

    assert replace(TrainConfig(), learning_rate=1e-4) == seed


def test_overrides_win_and_augmentation_merges_key_by_key():
    config = recipe_config("cpu", epochs=7, learning_rate=None, augment={"rotation": 0.0})
    assert config.epochs == 7 and config.learning_rate == RECIPES["cpu"]["learning_rate"]
    assert config.augment.rotation == 0.0 and config.augment.zoom == RECIPES["cpu"]["augment"]["zoom"]
    assert recipe_settings("cpu") == RECIPES["cpu"]  # the preset itself is untouched


def test_a_short_run_of_a_recipe_shortens_its_warm_up_and_frozen_epochs_with_a_notice(caplog):
    assert recipe_config("cpu", epochs=3).warmup_epochs == 2 and "do not fit in 3 epochs" in caplog.text
    assert recipe_config("ferplus", epochs=1).warmup_epochs == 0
    assert recipe_config("finetune", epochs=2).freeze_epochs == 1
    assert recipe_config("cpu", epochs=10).warmup_epochs == RECIPES["cpu"]["warmup_epochs"]
    with pytest.raises(ValueError, match="warmup_epochs"):  # set by the user: as given, and refused
        recipe_config("cpu", epochs=3, warmup_epochs=3)


def test_unknown_recipe_suggests_a_close_one():
    with pytest.raises(EmolensError, match="Did you mean 'best'"):
        recipe_settings("bset")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"schedule": "step"}, "schedule"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs"),
        ({"class_weight": "inverse"}, "class_weight"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_old_configs_without_new_settings_still_load():
    old = {
        "model": "seed",
        "epochs": 3,
        "batch_size": 8,
        "learning_rate": 1e-4,
        "val_split": 0.1,
        "seed": 0,
        "limit": None,
        "augment": {"rotation": 10.0, "shift": 0.1, "flip": True, "zoom": 0.0},
    }
    assert TrainConfig.from_dict(old).schedule == "inverse_time"


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = TrainConfig(epochs=10, learning_rate=0.1, schedule="cosine", warmup_epochs=2)
    rate = make_optimizer(config, steps_per_epoch=5)._learning_rate
    assert float(rate(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(rate(5)) == pytest.approx(0.05, rel=1e-5)  # halfway through the warm-up
    assert float(rate(10)) == pytest.approx(0.1, rel=1e-5)
    assert float(rate(30)) == pytest.approx(0.05, rel=1e-4)  # halfway through the decay
    assert float(rate(50)) == pytest.approx(0.0, abs=1e-6)


def test_sgd_is_nesterov_and_weight_decay_is_decoupled():
    sgd = make_optimizer(
        TrainConfig(optimizer="sgd", learning_rate=0.01, momentum=0.8, weight_decay=1e-4, schedule="plateau"), 10
    )
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.8 and sgd.weight_decay == 1e-4
    assert float(keras.ops.convert_to_numpy(sgd.learning_rate)) == pytest.approx(0.01)
    adamw = make_optimizer(TrainConfig(weight_decay=1e-4), 10)
    assert isinstance(adamw, keras.optimizers.AdamW)


def test_label_smoothing_reaches_the_loss():
    from emolens.data.augment import AugmentConfig

    trainer = build_trainer(
        TrainConfig(label_smoothing=0.1, augment=AugmentConfig(rotation=0, shift=0, flip=False)), num_classes=3
    )
    assert trainer.loss.label_smoothing == pytest.approx(0.1)


def test_class_weights_favour_rare_classes():
    labels = np.array([0] * 80 + [1] * 15 + [2] * 5)
    assert class_weights(labels, 3, "none") is None
    balanced = class_weights(labels, 3, "balanced")
    assert balanced == pytest.approx({0: 100 / 240, 1: 100 / 45, 2: 100 / 15})
    assert class_weights(labels, 3, "sqrt") == pytest.approx({k: v**0.5 for k, v in balanced.items()})


def test_a_lowered_learning_rate_survives_saving(tmp_path):
    from emolens.data.augment import AugmentConfig

    config = TrainConfig(
        optimizer="sgd", learning_rate=0.01, schedule="plateau", augment=AugmentConfig(rotation=0, shift=0, flip=False)
    )
    trainer = build_trainer(config, num_classes=7)
    trainer.fit(np.zeros((4, 48, 48, 1), "float32"), keras.utils.to_categorical([0, 1, 2, 3], 7), verbose=0)
    trainer.optimizer.learning_rate = 0.0025  # what the plateau schedule does after two reductions
    loaded, _ = load_model(save_model(trainer, tmp_path / "last.keras", {"class_names": list("abcdefg")}), compile=True)
    assert float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)) == pytest.approx(0.0025)


def test_plateau_counters_are_restored_from_the_training_state():
    state = RunState(plateau=PlateauState(wait=3, best=0.9, cooldown_counter=0))
    schedule = PlateauSchedule(state)
    schedule.on_train_begin()
    assert (schedule.wait, schedule.best) == (3, 0.9)
    fresh = PlateauSchedule(RunState())
    fresh.on_train_begin()
    assert fresh.wait == 0 and fresh.best in (None, np.inf)  # Keras sets its own start value


@pytest.mark.slow
def test_plateau_run_records_its_state_and_resumes(tmp_path):
    data = write_tree(tmp_path / "data", {"train": 12, "test": 2})
    run = tmp_path / "run"
    args = argv("train {data} --recipe best --model seed --epochs 2 --batch-size 8 --out {run}", data=data, run=run)
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())["config"]
    assert (
        config["schedule"] == "plateau"
        and config["optimizer"] == "sgd"
        and config["model"] == "seed"
        and config["epochs"] == 2
    )
    state = read_card(run / "last.keras")["training_state"]
    assert set(state["plateau"]) == {"wait", "best", "cooldown_counter"}
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    resumed = read_card(run / "last.keras")["training_state"]
    assert resumed["epochs_done"] == 3 and [row["epoch"] for row in resumed["history"]] == [1, 2, 3]
    assert resumed["plateau"]["wait"] in (0, state["plateau"]["wait"] + 1)  # counted on, not restarted from scratch


@pytest.mark.slow
def test_bf16_trains_in_mixed_precision_and_saves_float32(tmp_path):
    from emolens.models.classifier import load_classifier

    data = write_tree(tmp_path / "data", {"train": 8, "test": 2})
    run = tmp_path / "run"
    assert (
        main(
            argv(
                "train {data} --model mini_resnet --precision bf16 --epochs 2 --batch-size 8 --out {run}",
                data=data,
                run=run,
            )
        )
        == 0
    )
    trainer, _ = load_model(run / "last.keras", compile=False)
    convolutions = [
        layer for layer in trainer.get_layer("mini_resnet").layers if isinstance(layer, keras.layers.Conv2D)
    ]
    assert {layer.dtype_policy.name for layer in convolutions} == {"mixed_bfloat16"}
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the global policy is left as it was
    best, _ = load_model(run / "model.keras", compile=False)
    assert {layer.dtype_policy.name for layer in best.layers} == {"float32"}
    # The float32 copy holds the trained weights: it agrees with the mixed-precision network up to bf16 rounding.
    x = np.random.default_rng(0).random((4, 48, 48, 1), dtype=np.float32)
    mixed = trainer.get_layer("mini_resnet")
    if read_card(run / "model.keras")["epoch"] == 2:
        np.testing.assert_allclose(
            np.asarray(best(x)), keras.ops.convert_to_numpy(mixed(x)).astype("float32"), atol=0.05
        )
    assert load_classifier(run).predict(np.zeros((1, 48, 48), np.uint8)).dtype == np.float32
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 0


@pytest.mark.slow
def test_a_cosine_run_cannot_be_extended_past_its_planned_end(tmp_path):
    data = write_tree(tmp_path / "data", {"train": 10, "test": 2})
    run = tmp_path / "run"
    assert (
        main(["train", str(data), "--schedule", "cosine", "--epochs", "1", "--batch-size", "8", "--out", str(run)]) == 0
    )
    with pytest.raises(EmolensError, match="cosine schedule planned for 1 epochs"):
        from emolens.train import resume

        resume(run, epochs=2, verbose=0)


@pytest.mark.parametrize(
    ("model", "hardware", "expected"),
    [
        ("seed", True, "bf16"),
        ("seed", False, "float32"),
        ("mini_resnet", True, "bf16"),
        ("mini_resnet", False, "float32"),
        ("resnet", True, "bf16"),
        ("resnet", False, "float32"),
        ("vgg", True, "float32"),
    ],
)
def test_auto_precision_is_bf16_only_where_it_was_measured_faster(monkeypatch, model, hardware, expected):
    from emolens import backend
    from emolens.train.trainer import resolve_precision

    backend.cpu_has_bfloat16.cache_clear()
    monkeypatch.setattr(backend, "cpu_has_bfloat16", lambda: hardware)
    monkeypatch.setattr(backend, "has_gpu", lambda: False)
    assert TrainConfig().precision == "auto"
    assert resolve_precision(TrainConfig(model=model)) == expected
    assert resolve_precision(TrainConfig(model=model, precision="float32")) == "float32"
