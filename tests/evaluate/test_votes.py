"""Training on and scoring against a crowd's votes, and datasets whose classes are not the model's, end to end."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import argv
from emolens.cli import main
from emolens.data import load_dataset
from emolens.data.labels import clear_majority
from emolens.errors import EmolensError
from emolens.evaluate import evaluate
from emolens.evaluate.agreement import vote_agreement
from emolens.models.calibration import apply_temperature, expected_calibration_error
from emolens.models.classifier import load_classifier
from emolens.train import TrainConfig
from emolens.train.calibration import fit_calibration
from emolens.train.data import model_arrays

pytestmark = pytest.mark.slow

FERPLUS_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
FOLDER_TO_FERPLUS = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "neutral": "neutral",
    "sad": "sadness",
    "surprise": "surprise",
}


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "faces"
    assert main(["data", "synth", str(out), "--train-per-class", "40", "--test-per-class", "12"]) == 0
    return out


def write_votes(faces: Path, path: Path) -> Path:
    """FER+-style votes for every synthetic face but the first train image of each class: mostly its folder's
    class; every 5th face a neutral majority, every 7th a tie, every 11th mostly unknown, every 13th contempt."""
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", *FERPLUS_COLUMNS, "ferplus_rows"])
        for i, image in enumerate(sorted(faces.rglob("*.png"))):
            relative = image.relative_to(faces).as_posix()
            split, folder = relative.split("/")[:2]
            if split == "train" and image.name == sorted((faces / split / folder).iterdir())[0].name:
                continue  # not covered
            votes = dict.fromkeys(FERPLUS_COLUMNS, 0)
            votes[FOLDER_TO_FERPLUS[folder]] = 7
            votes[FERPLUS_COLUMNS[rng.integers(0, 7)]] += 3
            if i % 5 == 0:
                votes.update(neutral=8, **{FOLDER_TO_FERPLUS[folder]: 2} if folder != "neutral" else {})
            if i % 7 == 0:
                votes = {**dict.fromkeys(FERPLUS_COLUMNS, 0), "happiness": 5, "surprise": 5}
            if i % 11 == 0:
                votes = {**dict.fromkeys(FERPLUS_COLUMNS, 0), "unknown": 6, "sadness": 4}
            if i % 13 == 0:
                votes = {**dict.fromkeys(FERPLUS_COLUMNS, 0), "contempt": 9, "neutral": 1}
            writer.writerow([f"faces/{relative}", *votes.values(), 1])
    return path


@pytest.fixture(scope="module")
def votes(faces, tmp_path_factory) -> Path:
    return write_votes(faces, tmp_path_factory.mktemp("votes") / "votes.csv")


@pytest.fixture(scope="module")
def vote_run(faces, votes, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "votes"
    args = argv(
        "train {faces} --labels {votes} --epochs 3 --lr 1e-3 --source-label-weight 0.25 --out {run}",
        faces=faces,
        votes=votes,
        run=run,
    )
    assert main(args) == 0
    return run


def test_targets_are_the_votes_mixed_with_the_folder_label(faces, votes):
    dataset = load_dataset(faces, labels=votes)
    split, names = dataset.split("train"), dataset.class_names
    _, votes_only = model_arrays(split, names, TrainConfig())
    assert np.allclose(votes_only, split.votes) and np.allclose(votes_only.sum(axis=1), 1)
    _, majority = model_arrays(split, names, TrainConfig(target="majority"))
    assert (majority.argmax(axis=1) == split.labels).all() and set(np.unique(majority)) == {0.0, 1.0}
    _, mixed = model_arrays(split, names, TrainConfig(source_label_weight=0.25))
    folder = np.eye(8)[split.source_labels]
    assert np.allclose(mixed, 0.75 * split.votes + 0.25 * folder)


def test_a_teacher_s_answers_take_their_share_of_the_target_in_the_data_s_class_order(faces, votes, vote_run):
    dataset = load_dataset(faces, labels=votes)
    split, names = dataset.split("train"), dataset.class_names
    config = TrainConfig(teacher=str(vote_run), teacher_weight=0.5, source_label_weight=0.25)
    _, mixed = model_arrays(split, names, config)
    teacher = load_classifier(vote_run).predict(split.images, tta="flip")
    folder = np.eye(8)[split.source_labels]
    assert np.allclose(mixed, 0.25 * split.votes + 0.25 * folder + 0.5 * teacher, atol=1e-6)
    assert np.allclose(mixed.sum(axis=1), 1, atol=1e-5)
    # A teacher answering each view inside the trainer adds its share there: the rest is rescaled to sum to 1.
    _, rest = model_arrays(split, names, replace(config, teacher_sees="views"))
    assert np.allclose(rest, 0.5 * split.votes + 0.5 * folder, atol=1e-6)
    # The same data with its classes in reverse order: each column follows its class, not its position.
    reverse = tuple(reversed(names))
    _, reordered = model_arrays(dataset.with_classes(reverse).split("train"), reverse, config)
    assert np.allclose(reordered, mixed[:, ::-1], atol=1e-6)


def test_a_teacher_of_other_classes_or_too_large_a_share_is_refused(faces, votes, onnx_model, vote_run, capsys):
    split = load_dataset(faces, labels=votes).split("train")
    with pytest.raises(EmolensError, match="distil from a model trained on the same classes"):
        model_arrays(split, load_classifier(vote_run).class_names, TrainConfig(teacher=str(onnx_model)))
    with pytest.raises(ValueError, match="source_label_weight \\+ teacher_weight <= 1"):
        TrainConfig(teacher=str(vote_run), teacher_weight=0.8, source_label_weight=0.25)
    args = argv(
        "train {faces} --labels {votes} --teacher {vote_run} --teacher-weight 0.8 --source-label-weight 0.25",
        faces=faces,
        votes=votes,
        vote_run=vote_run,
    )
    assert main(args) == 2
    assert "Change --source-label-weight or --teacher-weight." in capsys.readouterr().err


def test_a_teacher_s_answers_are_kept_and_read_back_instead_of_asking_it_again(
    faces, votes, vote_run, tmp_path, caplog
):
    dataset = load_dataset(faces, labels=votes)
    split, names = dataset.split("train"), dataset.class_names
    kept = tmp_path / "teacher_answers.npy"
    config = TrainConfig(teacher=str(vote_run), teacher_weight=1.0)  # the target is the teacher's answer alone
    _, first = model_arrays(split, names, config, kept)
    assert np.allclose(np.load(kept), first) and np.allclose(
        first, load_classifier(vote_run).predict(split.images, tta="flip")
    )
    _, again = model_arrays(split, names, TrainConfig(teacher=str(tmp_path / "gone.keras"), teacher_weight=1.0), kept)
    assert np.array_equal(again, first)  # read back: the teacher is not asked (it is gone)
    np.save(kept, first[:3])
    _, asked = model_arrays(split, names, config, kept)
    assert (
        "answers for other images" in caplog.text and np.allclose(asked, first) and np.load(kept).shape == first.shape
    )


def test_a_teacher_trained_on_crops_answers_with_ten_crops_and_one_not_is_refused(
    faces, votes, vote_run, tmp_path, capsys
):
    teacher = tmp_path / "cropped"
    assert (
        main(
            argv(
                "train {faces} --labels {votes} --crop 44 --epochs 1 --out {run}", faces=faces, votes=votes, run=teacher
            )
        )
        == 0
    )
    dataset = load_dataset(faces, labels=votes)
    split, names = dataset.split("train"), dataset.class_names
    _, mixed = model_arrays(split, names, TrainConfig(teacher=str(teacher), teacher_weight=1.0, teacher_tta="crops"))
    classifier = load_classifier(teacher)
    assert np.allclose(mixed, classifier.predict(split.images, tta="crops"), atol=1e-6)
    assert not np.allclose(mixed, classifier.predict(split.images, tta="flip"), atol=1e-4)
    student = tmp_path / "student"
    args = argv(
        "train {faces} --labels {votes} --teacher {vote_run} --teacher-tta crops --epochs 1 --out {run}",
        faces=faces,
        votes=votes,
        vote_run=vote_run,
        run=student,
    )
    assert main(args) == 2
    assert "needs a model trained on crops" in capsys.readouterr().err and not student.exists()


def test_a_distilled_run_resumes_from_its_kept_answers_without_its_teacher(faces, votes, vote_run, tmp_path):
    teacher = tmp_path / "teacher.keras"
    shutil.copy(vote_run / "model.keras", teacher)
    run = tmp_path / "student"
    args = argv(
        "train {faces} --labels {votes} --teacher {teacher} --epochs 1 --out {run}",
        faces=faces,
        votes=votes,
        teacher=teacher,
        run=run,
    )
    assert main(args) == 0 and (run / "teacher_answers.npy").is_file()
    teacher.unlink()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert [row.split(",")[0] for row in (run / "history.csv").read_text().splitlines()[1:]] == ["1", "2"]


def test_a_distilled_run_records_its_teacher_s_file_for_resume(faces, votes, vote_run, tmp_path, monkeypatch):
    monkeypatch.chdir(vote_run.parent)  # the teacher given relative to here; the record must not depend on it
    run = tmp_path / "student"
    args = argv(
        "train {faces} --labels {votes} --teacher {teacher} --epochs 1 --out {run}",
        faces=faces,
        votes=votes,
        teacher=vote_run.name,
        run=run,
    )
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["teacher"] == str((vote_run / "model.keras").resolve()) and config["teacher_weight"] == 0.5
    # A deployed card names the teacher by its run folder and file, not by this machine's folders.
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "student.onnx")]) == 0
    card = json.loads((tmp_path / "student.json").read_text())
    assert card["recipe"]["teacher"] == f"{vote_run.name}/model.keras"


def test_a_run_on_votes_records_the_labels_file_and_learns_eight_classes(vote_run, votes):
    config = json.loads((vote_run / "config.json").read_text())
    assert config["data"]["labels"] == str(votes.resolve()) and config["config"]["source_label_weight"] == 0.25
    assert len(config["class_names"]) == 8 and "contempt" in config["class_names"]
    skipped = (vote_run / "skipped_files.txt").read_text()
    assert skipped.count("not in the labels file") == 7 and "top vote not an emotion" in skipped


def test_resume_relabels_the_data_with_the_run_s_labels_file(vote_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(vote_run, copy)
    assert main(["train", "--resume", str(copy), "--epochs", "4"]) == 0
    assert json.loads((copy / "config.json").read_text())["config"]["epochs"] == 4


def test_evaluate_against_votes_reports_majority_vote_share_and_folder_label(vote_run, faces, votes, tmp_path):
    evaluation = evaluate(vote_run, faces, labels=votes, out=tmp_path / "eval")
    test = load_dataset(faces, labels=votes).split("test")
    clear = clear_majority(test.votes)
    assert evaluation.num_images == int(clear.sum()) and evaluation.left_out["votes tied between classes"] == int(
        (~clear).sum()
    )
    assert evaluation.left_out["top vote not an emotion (unknown or not a face)"] > 0
    with open(tmp_path / "eval" / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    names = evaluation.class_names
    predicted = np.array([names.index(r["predicted"]) for r in rows])
    kept = test.subset(np.flatnonzero(clear))
    assert [r["file"] for r in rows] == list(kept.names)
    assert evaluation.accuracy == pytest.approx((predicted == kept.labels).mean())
    assert evaluation.agreement["vote_share"] == pytest.approx(
        kept.votes[np.arange(len(kept)), predicted].mean(), abs=1e-6
    )
    assert evaluation.source_label["accuracy"] == pytest.approx((predicted == kept.source_labels).mean())
    assert sum(b["faces"] for b in evaluation.agreement["vote_calibration"]["table"]) == len(kept)
    page = (tmp_path / "eval" / "report.html").read_text()
    assert "Agreement with people" in page and "Vote share of the prediction" in page


def test_an_eight_class_model_on_a_seven_class_folder_counts_contempt_as_wrong(vote_run, faces, tmp_path):
    evaluation = evaluate(vote_run, faces, out=tmp_path / "eval")
    assert evaluation.classes["model_only"] == ["contempt"] and evaluation.num_images == 7 * 12
    contempt = evaluation.class_names.index("contempt")
    predicted_contempt = sum(row[contempt] for row in evaluation.confusion_matrix)
    wrong = sum(sum(row) - row[i] for i, row in enumerate(evaluation.confusion_matrix))
    assert wrong >= predicted_contempt and evaluation.accuracy == pytest.approx(1 - wrong / (7 * 12))


def test_other_class_names_are_matched_by_synonym_or_map_and_the_rest_left_out(vote_run, faces, tmp_path):
    renamed = tmp_path / "renamed"
    for folder, name in (("angry", "anger"), ("sad", "sadness"), ("happy", "joy"), ("surprise", "surprise")):
        shutil.copytree(faces / "test" / folder, renamed / "test" / name)
    shutil.copytree(faces / "test" / "fear", renamed / "test" / "shock")
    with pytest.raises(EmolensError, match="class map names"):
        evaluate(vote_run, renamed, out=tmp_path / "e0", class_map={"joy": "glee"})
    evaluation = evaluate(vote_run, renamed, out=tmp_path / "e1", class_map={"joy": "happy"})
    assert evaluation.classes["renamed"] == {"anger": "angry", "joy": "happy", "sadness": "sad"}
    assert evaluation.classes["data_only"] == ["shock"] and evaluation.left_out == {
        "shock: a class the model lacks": 12
    }
    assert evaluation.num_images == 48 and set(evaluation.classes["model_only"]) == {
        "contempt",
        "disgust",
        "fear",
        "neutral",
    }


def test_evaluate_cli_prints_the_agreement(vote_run, faces, votes, tmp_path, capsys):
    args = ["evaluate", str(vote_run), str(faces), "--labels", str(votes), "--out", str(tmp_path / "e")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "against the votes' majority" in out and "Vote share" in out and "Left out" in out
    assert main(["evaluate", str(vote_run), str(faces), "--class-map", "joy", "--out", str(tmp_path / "e2")]) == 2


def test_calibration_on_votes_measures_confidence_against_the_vote_shares(vote_run, faces, votes, tmp_path, capsys):
    classifier = load_classifier(vote_run / "model.keras")
    test = load_dataset(faces, labels=votes).with_classes(tuple(classifier.class_names)).split("test")
    calibration = fit_calibration(classifier, test.images, test.labels, test.votes)
    calibrated = apply_temperature(classifier.predict(test.images, calibrated=False), calibration.temperature)
    gap = vote_agreement(test.votes, calibrated)["vote_calibration"]["gap"]
    assert calibration.vote_ece_after == pytest.approx(gap, abs=1e-4)  # the temperature is kept to 4 places
    assert calibration.ece_after == pytest.approx(expected_calibration_error(calibrated, test.labels), abs=1e-4)
    assert calibration.vote_ece_after != pytest.approx(calibration.ece_after, abs=1e-3)
    assert "vote share" in calibration.error_change() and "vote_ece_after" in calibration.to_card()
    on_labels = fit_calibration(classifier, test.images, test.labels)
    assert on_labels.vote_ece_after is None and "vote_ece_after" not in on_labels.to_card()
    assert "vote share" not in on_labels.error_change()

    copy = tmp_path / "run"
    shutil.copytree(vote_run, copy)
    assert main(["calibrate", str(copy), str(faces), "--labels", str(votes)]) == 0
    assert "gap between confidence and vote share" in capsys.readouterr().out
    assert "vote_ece_after" in load_classifier(copy / "model.keras").card["calibration"]
