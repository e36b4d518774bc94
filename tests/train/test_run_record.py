"""A run's record (config.json) and state (last.keras's training_state) as types: the layout on disk is the one
runs have always had, a round trip changes nothing, and a damaged field is a one-line error that names it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from emolens import backend
from emolens.data.dataset import Dataset, SkippedFile, Split
from emolens.errors import EmolensError
from emolens.models.card import ModelCard
from emolens.rundir import RunDir
from emolens.train.config import TrainConfig
from emolens.train.record import RunData, RunEnvironment, RunRecord
from emolens.train.run_folder import write_run_files
from emolens.train.state import PlateauState, RunState

EXAMPLES = Path(__file__).parent / "examples"
# A copy of a FER+ run's config.json as emolens wrote it (only its data paths shortened).
CONFIG = EXAMPLES / "config.json"
# config.json as the first version of emolens wrote it: fewer settings, no labels, digests or split sizes.
FIRST_LAYOUT = EXAMPLES / "config-first-layout.json"
STATE = EXAMPLES / "training_state.json"


def _run_with(tmp_path: Path, config: object | str) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.config.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
    return run


def _example(path: Path = CONFIG) -> dict:
    return json.loads(path.read_text())


# --- the layout on disk ------------------------------------------------------------------------------------------


def test_a_run_folders_config_round_trips_byte_for_byte(tmp_path):
    record = RunRecord.read(_run_with(tmp_path, CONFIG.read_text()))
    assert record.config.model == "resnet" and record.config.crop == 44 and record.config.precision == "float32"
    assert record.class_names[1] == "contempt" and record.data.labels == "/data/fer2013-ferplus.csv"
    assert record.data.counts is not None and record.data.counts["test"]["happy"] == 898
    assert record.environment.data_parallel_devices == 1 and record.versions["keras"] == "3.15.1"
    out = tmp_path / "written"
    out.mkdir()
    record.write(out)
    assert (out / "config.json").read_text() == CONFIG.read_text()


def test_to_dict_and_from_dict_are_inverses():
    record = RunRecord.from_dict(_example())
    assert RunRecord.from_dict(record.to_dict()) == record
    assert record.to_dict() == _example()


def test_a_config_of_the_first_layout_reads_with_its_gaps_and_keeps_them():
    old = _example(FIRST_LAYOUT)
    record = RunRecord.from_dict(old)
    # Settings added since take their defaults, but precision is what such runs trained in.
    assert record.config.precision == "float32" and record.config.schedule == "inverse_time"
    assert (record.data.labels, record.data.content_digest, record.data.train_images) == (None, None, None)
    assert record.environment.data_parallel_devices is None
    written = record.to_dict()
    assert written["data"] == old["data"] and written["environment"] == old["environment"]
    assert {key: written["config"][key] for key in old["config"] if key != "augment"} == {
        key: value for key, value in old["config"].items() if key != "augment"
    }
    assert old["config"]["augment"].items() <= written["config"]["augment"].items()
    assert list(written) == list(old)


def _as_the_old_writer_wrote(
    config: TrainConfig, dataset: Dataset, data: Path, splits: tuple[Split, Split], removed: int, devices: int
) -> dict:
    """config.json's object as write_run_files built it before RunRecord (its dict, copied verbatim)."""
    from emolens.data.quality import sharpness

    train_split, val_split = splits
    return {
        "config": config.to_dict(),
        "class_names": list(dataset.class_names),
        "data": {
            "source": str(Path(data).resolve()),
            **({"labels": str(Path(dataset.labels_file).resolve())} if dataset.labels_file else {}),
            "fingerprint": dataset.fingerprint,
            "content_digest": dataset.content_digest(),
            "counts": dataset.counts(),
            "skipped": len(dataset.skipped),
            "train_images": len(train_split),
            "val_images": len(val_split),
            **({"dedupe_removed": removed} if config.dedupe != "none" else {}),
            "train_sharpness": round(sharpness(train_split.images), 2),
        },
        "environment": {**backend.summary(), "data_parallel_devices": devices},
        "versions": backend.versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@pytest.mark.parametrize(("dedupe", "labels_file"), [("none", ""), ("exact", "votes.csv")])
def test_a_new_run_writes_config_json_as_the_old_writer_did(tmp_path, dedupe, labels_file):
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (6, 48, 48), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2]), tuple("abcdef"))
    dataset = Dataset(
        str(tmp_path / "faces"),
        ("angry", "happy", "sad"),
        {"train": split, "test": split.subset(np.arange(3))},
        skipped=(SkippedFile("train/happy/x.txt", "not an image"),),
        fingerprint="0123456789abcdef",
        labels_file=str(tmp_path / labels_file) if labels_file else "",
    )
    config = TrainConfig(epochs=2, learning_rate=0.001, precision="float32", dedupe=dedupe)
    splits = (split.subset(np.arange(4)), split.subset(np.arange(4, 6)))
    (tmp_path / "run").mkdir()
    write_run_files(RunDir(tmp_path / "run"), config, dataset, tmp_path / "faces", splits, [], 1, (48, 48, 1))
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    expected = _as_the_old_writer_wrote(config, dataset, tmp_path / "faces", splits, 0, 1)
    assert json.dumps({**written, "created": ""}, indent=2) == json.dumps({**expected, "created": ""}, indent=2)
    assert RunRecord.read(tmp_path / "run").data.dedupe_removed == (0 if dedupe == "exact" else None)


# --- damaged or edited config.json ------------------------------------------------------------------------------


def _edit(change: Callable[[dict], object]) -> Callable[[dict], dict]:
    def edited(config: dict) -> dict:
        change(config)
        return config

    return edited


DAMAGED: dict[str, tuple[Callable[[dict], dict], str]] = {
    "a string for a count": (
        _edit(lambda c: c["data"].update(train_images="25344")),
        '"data.train_images" is not a whole number >= 0 (it is "25344")',
    ),
    "a boolean for a count": (_edit(lambda c: c["data"].update(skipped=True)), '"data.skipped" is not a whole number'),
    "a negative count": (_edit(lambda c: c["data"].update(val_images=-1)), '"data.val_images" is not a whole number'),
    "a negative sharpness": (
        _edit(lambda c: c["data"].update(train_sharpness=-2.5)),
        '"data.train_sharpness" is not a number >= 0 (it is -2.5)',
    ),
    "no fingerprint": (_edit(lambda c: c["data"].pop("fingerprint")), '"data.fingerprint" is missing'),
    "an empty source": (_edit(lambda c: c["data"].update(source="")), '"data.source" is not a non-empty string'),
    "counts of words": (
        _edit(lambda c: c["data"]["counts"]["train"].update(happy="many")),
        '"data.counts" is not images per split and class',
    ),
    "no environment": (_edit(lambda c: c.pop("environment")), '"environment" is missing'),
    "threads as a list": (
        _edit(lambda c: c["environment"].update(threads=[2])),
        '"environment.threads" is not a whole number >= 0 (it is [2])',
    ),
    "a version as a number": (
        _edit(lambda c: c["versions"].update(keras=3)),
        '"versions" is not an object of strings',
    ),
    "a class twice": (
        _edit(lambda c: c["class_names"].append("happy")),
        '"class_names" is not a list of distinct names',
    ),
    "no classes": (
        _edit(lambda c: c.update(class_names=[])),
        '"class_names" is not a list of distinct names (it is [])',
    ),
    "not a date": (
        _edit(lambda c: c.update(created="yesterday")),
        '"created" is not a date and time (ISO 8601) (it is "yesterday")',
    ),
    "config as a list": (_edit(lambda c: c.update(config=[1])), '"config" is not an object (it is [1])'),
    "a negative learning rate": (
        _edit(lambda c: c["config"].update(learning_rate=-0.1)),
        "Expected a positive learning_rate. Received: learning_rate=-0.1",
    ),
    "an unknown part": (_edit(lambda c: c.update(notes="hi")), "unknown field: notes"),
    "an unknown data field": (
        _edit(lambda c: c["data"].update(colour=1, size=2)),
        'unknown fields in "data": colour, size',
    ),
    "data as a string": (_edit(lambda c: c.update(data="fer2013.zip")), '"data" is not an object'),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_field_is_a_one_line_error_naming_the_file_and_the_field(tmp_path, case):
    edit, why = DAMAGED[case]
    run = _run_with(tmp_path, edit(_example()))
    with pytest.raises(EmolensError) as raised:
        RunRecord.read(run)
    message = str(raised.value)
    assert message.startswith(f"{run.config} is damaged (") and why in message, message
    assert message.endswith("restore it, or train the run again.") and "\n" not in message


def test_from_dict_raises_value_error_naming_the_field():
    with pytest.raises(ValueError, match=r'"data\.train_images" is not a whole number >= 0 \(it is -4\)'):
        RunRecord.from_dict(_example() | {"data": {**_example()["data"], "train_images": -4}})
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        RunRecord.from_dict([])


def test_a_folder_without_config_json_is_not_a_run(tmp_path):
    with pytest.raises(EmolensError, match=r"is not an emolens run folder \(no config\.json\)"):
        RunRecord.read(tmp_path)


def test_a_config_json_that_is_a_folder_is_damaged(tmp_path):
    (tmp_path / "config.json").mkdir()
    with pytest.raises(EmolensError, match=r"config\.json is damaged \(.* is a folder, not a regular file\)"):
        RunRecord.read(tmp_path)


def test_a_record_built_in_code_has_the_files_order():
    record = RunRecord(
        config=TrainConfig(),
        class_names=("a", "b"),
        data=RunData(source="/d", fingerprint="f", labels="/l", dedupe_removed=3),
        environment=RunEnvironment(backend="jax", devices=("CPU",), threads=4),
        versions={},
        created="2026-12-06T22:30:04+00:00",
    )
    assert list(record.to_dict()["data"]) == ["source", "labels", "fingerprint", "dedupe_removed"]
    assert record.to_dict()["environment"] == {"backend": "jax", "devices": ["CPU"], "threads": 4}


# --- the training state -----------------------------------------------------------------------------------------


def test_the_training_state_round_trips():
    stored = json.loads(STATE.read_text())
    state = RunState.from_dict(stored)
    assert (
        state.epochs_done == 3
        and state.best_epoch == 3
        and state.plateau == PlateauState(0, stored["plateau"]["best"], 0)
    )
    assert state.to_dict() == stored and json.dumps(state.to_dict(), indent=2) + "\n" == STATE.read_text()
    assert RunState.from_dict(state.to_dict()) == state
    assert "plateau" not in RunState().to_dict() and RunState().to_dict() == {
        "epochs_done": 0,
        "best_val_accuracy": -1.0,
        "best_epoch": 0,
        "history": [],
    }


def test_end_epoch_keeps_the_best_epoch():
    state = RunState()
    assert state.end_epoch({"epoch": 1, "val_accuracy": 0.4})
    assert not state.end_epoch({"epoch": 2, "val_accuracy": 0.3})
    assert state.end_epoch({"epoch": 3, "val_accuracy": 0.5})
    assert (state.epochs_done, state.best_epoch, state.best_val_accuracy, len(state.history)) == (3, 3, 0.5, 3)


def _state_edit(change: Callable[[dict], object]) -> dict:
    state = json.loads(STATE.read_text())
    change(state)
    return state


DAMAGED_STATES: dict[str, tuple[dict, str]] = {
    "epochs as a string": (_state_edit(lambda s: s.update(epochs_done="3")), '"epochs_done" is not a whole number'),
    "accuracy above 1": (
        _state_edit(lambda s: s.update(best_val_accuracy=1.5)),
        '"best_val_accuracy" is not a number in [-1, 1] (it is 1.5)',
    ),
    "best after done": (_state_edit(lambda s: s.update(best_epoch=4)), '"best_epoch" 4 is after "epochs_done" 3'),
    "a row missing": (_state_edit(lambda s: s["history"].pop()), '"history" has 2 rows for 3 epochs done'),
    "rows out of order": (_state_edit(lambda s: s["history"].reverse()), '"history" is not a list of rows'),
    "no plateau wait": (_state_edit(lambda s: s["plateau"].pop("wait")), '"plateau.wait" is missing'),
    "an unknown field": (_state_edit(lambda s: s.update(lr=1)), "unknown field: lr"),
    "no history": (_state_edit(lambda s: s.pop("history")), '"history" is missing'),
}


@pytest.mark.parametrize("case", DAMAGED_STATES)
def test_a_damaged_training_state_is_a_one_line_error(case):
    state, why = DAMAGED_STATES[case]
    card = ModelCard(class_names=("a", "b"), details={"training_state": state})
    with pytest.raises(EmolensError) as raised:
        RunState.from_card(card, "run/last.keras")
    message = str(raised.value)
    assert message.startswith("run/last.keras: its training state is damaged (") and why in message, message
    assert "\n" not in message


def test_a_card_without_a_training_state_is_not_a_checkpoint():
    for card in (None, ModelCard(class_names=("a", "b"))):
        with pytest.raises(EmolensError, match="holds no training state"):
            RunState.from_card(card, "model.keras")


def test_a_checkpoints_state_is_read_from_its_card(tmp_path):
    import keras

    from emolens.models.saving import save_model

    state = RunState.from_dict(json.loads(STATE.read_text()))
    network = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    card = ModelCard(class_names=("a", "b")).with_details(training_state=state.to_dict())
    assert RunState.read(save_model(network, tmp_path / "last.keras", card)) == state
