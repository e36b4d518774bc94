"""`emolens export`: a Keras model or run folder to ONNX with its card, the name it writes, and what it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from emolens.cli import main
from emolens.constants import FER2013_CLASSES

CLASSES = list(FER2013_CLASSES)


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


def test_export_names_the_file_after_the_run_folder_it_is_run_in(keras_model, tmp_path, monkeypatch):
    from emolens.export import export_model

    run = tmp_path / "myrun"
    run.mkdir()
    shutil.copy(keras_model, run / "model.keras")
    saved = {
        "config": {"model": "mini_resnet"},
        "class_names": ["happy", "sad"],
        "data": {"source": "faces", "fingerprint": "0"},
        "environment": {"backend": "tensorflow", "devices": ["CPU"], "threads": 2},
        "versions": {"emolens": "0.1.0"},
        "created": "2026-12-07T04:00:00+00:00",
    }
    (run / "config.json").write_text(json.dumps(saved))
    monkeypatch.chdir(run)
    assert export_model(".", format="keras") == Path("myrun.keras") and (run / "myrun.json").is_file()
