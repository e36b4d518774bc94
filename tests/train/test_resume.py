"""A run killed with SIGKILL mid-training resumes with no lost, repeated or damaged epoch."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_tree
from emolens.data.synth import synthesize_dataset
from emolens.models.saving import read_card

pytestmark = pytest.mark.slow
EPOCHS = 6


def history(run: Path) -> list[dict[str, str]]:
    path = run / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_sigkill_then_resume(tmp_path):
    data = synthesize_dataset(tmp_path / "data", train_per_class=30, test_per_class=5, seed=1)
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "emolens.cli",
        "train",
        str(data),
        "--epochs",
        str(EPOCHS),
        "--out",
        str(run),
        "--lr",
        "1e-3",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        deadline = time.monotonic() + 240
        while len(history(run)) < 2:
            assert process.poll() is None, f"training ended early: {process.stderr.read().decode()}"
            assert time.monotonic() < deadline, "training made no progress"
            time.sleep(0.05)
        # Kill as the next epoch is under way, without warning.
        time.sleep(0.3)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    before = history(run)
    done = read_card(run / "last.keras")["training_state"]["epochs_done"]
    assert 2 <= done < EPOCHS and len(before) == done

    result = subprocess.run(
        [sys.executable, "-m", "emolens.cli", "train", "--resume", str(run)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    after = history(run)
    assert [int(row["epoch"]) for row in after] == list(range(1, EPOCHS + 1))
    assert after[: len(before)] == before, "finished epochs must stay as they were"
    assert read_card(run / "last.keras")["training_state"]["epochs_done"] == EPOCHS
    assert not [p.name for p in run.iterdir() if ".partial" in p.name]

    again = subprocess.run(
        [sys.executable, "-m", "emolens.cli", "train", "--resume", str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and "already finished" in again.stderr


def test_a_run_on_crops_resumes(tmp_path):
    # Its checkpoint holds the 48-pixel trainer (augmentation, crop) around a 44-pixel classifier.
    from emolens.cli import main

    data = write_tree(tmp_path / "data", {"train": 10, "test": 1})
    run = tmp_path / "run"
    assert main(["train", str(data), "--crop", "44", "--epochs", "1", "--batch-size", "8", "--out", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert (run / "history.csv").read_text().splitlines()[-1].startswith("2,")
