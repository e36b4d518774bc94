"""End to end through the CLI on synthetic faces: synth -> train -> evaluate, and every documented error."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from conftest import ROOT, run_in_fresh_python, write_tree
from emolens.cli import main

EPOCHS = 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "faces"
    assert main(["data", "synth", str(out), "--train-per-class", "200", "--test-per-class", "30"]) == 0
    return out


@pytest.fixture(scope="session")
def trained_run(synth_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "seed"
    status = main(["train", str(synth_data), "--epochs", str(EPOCHS), "--lr", "1e-3", "--out", str(run), "--seed", "0"])
    assert status == 0
    return run


@pytest.fixture(scope="session")
def evaluated_run(trained_run, synth_data) -> Path:
    assert main(["evaluate", str(trained_run), str(synth_data)]) == 0
    return trained_run


def test_synth_writes_the_fer2013_layout(synth_data):
    for split, count in (("train", 200), ("test", 30)):
        folders = sorted(p.name for p in (synth_data / split).iterdir())
        assert folders == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
        assert all(len(list((synth_data / split / f).iterdir())) == count for f in folders)


def test_train_writes_the_run_folder(trained_run):
    assert {"model.keras", "last.keras", "history.csv", "config.json", "curves.png"} <= {
        p.name for p in trained_run.iterdir()
    }
    assert not [p for p in trained_run.iterdir() if ".partial" in p.name]
    rows = (trained_run / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,accuracy,loss,val_accuracy,val_loss")
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, EPOCHS + 1))
    config = json.loads((trained_run / "config.json").read_text())
    assert config["config"]["model"] == "seed" and config["config"]["epochs"] == EPOCHS
    assert config["class_names"][0] == "angry" and len(config["data"]["fingerprint"]) == 16
    assert config["data"]["counts"]["train"]["happy"] == 200
    assert config["environment"]["backend"] and config["versions"]["keras"]


def test_evaluate_beats_chance_and_writes_every_report(evaluated_run):
    metrics = json.loads((evaluated_run / "metrics.json").read_text())
    assert metrics["num_images"] == 7 * 30 and metrics["split"] == "test"
    assert metrics["accuracy"] > 0.35, f"barely above chance (1/7): {metrics['accuracy']:.3f}"
    for name in (
        "classification_report.txt",
        "confusion_matrix.png",
        "reliability.png",
        "misclassified.png",
        "report.html",
    ):
        assert (evaluated_run / name).stat().st_size > 0
    html = (evaluated_run / "report.html").read_text()
    assert f"{100 * metrics['accuracy']:.2f}" in html and html.count("data:image/png;base64,") == 4


def test_train_calibrates_the_model_it_writes(evaluated_run):
    from emolens.models.saving import read_card

    card = read_card(evaluated_run / "model.keras")
    assert card["calibration"]["images"] == 7 * 20  # the validation tenth of 7 x 200
    assert card.temperature > 0 and card["calibration"]["nll_after"] <= card["calibration"]["nll_before"]
    calibration = json.loads((evaluated_run / "metrics.json").read_text())["calibration"]
    assert calibration["temperature"] == card.temperature and calibration["bins"] == 15
    assert 0 <= calibration["ece_calibrated"] <= 1 and 0 <= calibration["ece_raw"] <= 1


def test_evaluate_agrees_with_scikit_learn(evaluated_run, synth_data):
    from emolens.data import load_dataset
    from emolens.models.classifier import load_classifier

    metrics = json.loads((evaluated_run / "metrics.json").read_text())
    test = load_dataset(synth_data).split("test")
    y_pred = load_classifier(evaluated_run).predict(test.images).argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(test.labels, y_pred))
    assert metrics["macro_f1"] == pytest.approx(f1_score(test.labels, y_pred, average="macro"))
    assert metrics["confusion_matrix"] == confusion_matrix(test.labels, y_pred).tolist()
    with open(evaluated_run / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["file"] for row in rows] == list(test.names)
    assert [row["predicted"] for row in rows] == [metrics["class_names"][i] for i in y_pred]
    assert sum(row["true"] == row["predicted"] for row in rows) == round(metrics["accuracy"] * len(rows))


def test_evaluate_json_prints_the_metrics(evaluated_run, synth_data, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(evaluated_run), str(synth_data), "--json", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "metrics.json").read_text())


def test_evaluate_on_a_bare_class_folder_and_a_keras_file(evaluated_run, synth_data, tmp_path):
    assert main(["evaluate", str(evaluated_run / "model.keras"), str(synth_data / "test"), "--out", str(tmp_path)]) == 0
    bare = json.loads((tmp_path / "metrics.json").read_text())
    full = json.loads((evaluated_run / "metrics.json").read_text())
    assert bare["accuracy"] == full["accuracy"] and bare["num_images"] == full["num_images"]


def test_preview_writes_a_grid(synth_data, tmp_path):
    assert main(["data", "preview", str(synth_data), "--out", str(tmp_path / "grid.png"), "--count", "8"]) == 0
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_models_and_doctor(capsys):
    assert main(["models"]) == 0
    assert "seed_bn" in capsys.readouterr().out
    assert main(["doctor"]) == 0


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emolens.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr


def test_user_errors_are_one_line_with_exit_status_2(tmp_path):
    empty_class = write_tree(tmp_path / "emptyclass", {"train": 2, "test": 1})
    (empty_class / "train" / "sad" / "000.png").unlink()
    (empty_class / "train" / "sad" / "001.png").unlink()
    mismatched = write_tree(tmp_path / "mismatched", {"train": 2})
    write_tree(mismatched, {"test": 1}, classes=("angry", "happy", "surprise"))
    good = write_tree(tmp_path / "good", {"train": 3, "test": 1})
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a folder should be")
    cases = [
        (("train", str(tmp_path / "missing")), "no such file or folder"),
        (("train", str(empty_class)), "is empty"),
        (("train", str(mismatched)), "different class folders"),
        (("train", str(good), "--model", "resnet9000"), "unknown model"),
        (("train", str(good), "--rotation", "-5"), "rotation"),
        (("train", str(good), "--lr", "-1"), "Received: learning_rate=-1.0. Change --lr."),
        (("train", str(good), "--warmup-epochs", "3"), "Change --epochs or --warmup-epochs."),
        (("train", "--resume", str(tmp_path)), "not an emolens run folder"),
        (("evaluate", str(tmp_path), str(good)), "no model.keras"),
        (("train", str(good), "--val-split", "0.5", "--out", str(blocker / "run")), "cannot use"),
    ]
    for args, fragment in cases:
        assert_one_line_error(run_cli(*args, "--epochs", "1") if args[0] == "train" else run_cli(*args), fragment)


def test_synth_refuses_a_used_folder(tmp_path):
    write_tree(tmp_path / "used", {"train": 1})
    assert_one_line_error(run_cli("data", "synth", str(tmp_path / "used")), "")


def test_evaluate_on_the_fer2013_csv_matches_classes_by_name(evaluated_run, synth_data, tmp_path):
    from emolens.constants import FER2013_CSV_CLASSES
    from emolens.data import load_dataset

    test = load_dataset(synth_data).split("test")
    folder_classes = load_dataset(synth_data).class_names
    lines = ["emotion,pixels,Usage"]
    for image, label in zip(test.images, test.labels, strict=True):
        csv_label = FER2013_CSV_CLASSES.index(folder_classes[label])  # the CSV numbers classes in its own order
        lines.append(f"{csv_label},{' '.join(map(str, image.ravel()))},PrivateTest")
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    assert main(["evaluate", str(evaluated_run), str(tmp_path / "fer2013.csv"), "--out", str(tmp_path / "eval")]) == 0
    from_csv = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    from_folder = json.loads((evaluated_run / "metrics.json").read_text())
    assert from_csv["accuracy"] == from_folder["accuracy"]
    assert from_csv["confusion_matrix"] == from_folder["confusion_matrix"]


def test_resume_says_which_settings_it_ignores(trained_run, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(trained_run), "--model", "seed_bn", "--no-flip"]) == 2
    err = capsys.readouterr().err
    assert "ignoring --model, --no-flip" in err and f"already finished {EPOCHS} of {EPOCHS} epochs" in err


@pytest.mark.parametrize("argv", [["models"], ["recipes"], ["--help"], ["predict", "--help"], ["serve", "--help"]])
def test_static_commands_answer_without_loading_tensorflow(argv):
    done = run_in_fresh_python(argv)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    assert done.backend_modules == []


def test_every_subcommand_has_a_description_and_lists_its_choices():
    import argparse

    from emolens.cli import build_parser

    def commands(parser):
        for action in parser._actions:  # argparse keeps its subparsers here, as its own help does
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield name, sub
                    yield from commands(sub)

    found = dict(commands(build_parser()))
    assert {"train", "evaluate", "predict", "serve", "models", "recipes", "doctor", "synth", "inspect"} <= set(found)
    for name, sub in found.items():
        assert sub.description and sub.description[0].isupper(), f"{name} has no description line"
    usage = found["predict"].format_usage()
    assert "{yunet,haar}" in usage and "{none,flip,crops}" in usage


def test_output_to_a_file_or_ci_never_wraps_paths_or_pads_log_lines(tmp_path):
    import shutil

    folder = tmp_path / ("a folder whose name alone is longer than eighty columns, as real paths often are" + "x" * 20)
    folder.mkdir()
    shutil.copy(ROOT / "samples" / "astronaut.png", folder / "face.png")
    (folder / "broken.png").write_bytes(b"not a picture")
    done = subprocess.run(
        [sys.executable, "-m", "emolens", "predict", str(folder)], capture_output=True, text=True, timeout=300
    )
    assert f"{folder / 'face.png'}: 1 face: " in done.stdout.splitlines()[0]
    skipped = [line for line in done.stderr.splitlines() if "broken.png" in line]
    assert len(skipped) == 1 and skipped[0].startswith("skipped ") and str(folder / "broken.png") in skipped[0]
    assert all(line == line.rstrip() for line in done.stderr.splitlines()), "no line is padded to a width"


def test_make_demo_ends_by_saying_how_to_put_emolens_on_the_path():
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0 and "source .venv/bin/activate" in dry_run.stdout.splitlines()[-1]
