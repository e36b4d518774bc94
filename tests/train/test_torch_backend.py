"""A short end-to-end run under KERAS_BACKEND=torch: GPU machines may have torch but not TensorFlow."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from emolens.data.synth import synthesize_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("torch") is None, reason="torch is not installed (make test installs the CPU wheel)"
    ),
]


def test_train_and_evaluate_on_torch(tmp_path):
    data = synthesize_dataset(tmp_path / "data", train_per_class=20, test_per_class=5, seed=2)
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    cli = [sys.executable, "-m", "emolens.cli"]
    train = subprocess.run(
        [*cli, "train", str(data), "--epochs", "2", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["environment"]["backend"] == "torch" and config["versions"]["torch"] != "not installed"
    evaluate = subprocess.run(
        [*cli, "evaluate", str(tmp_path / "run"), str(data), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert evaluate.returncode == 0, evaluate.stderr
    metrics = json.loads(evaluate.stdout)
    assert metrics["num_images"] == 35 and 0.0 <= metrics["accuracy"] <= 1.0
