"""A teacher answering each augmented view inside the trainer (`--teacher-sees views`), end to end."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import argv
from emolens.cli import main
from emolens.data import load_dataset
from emolens.data.preprocess import to_model_input
from emolens.models.card import write_card
from emolens.models.classifier import load_classifier
from emolens.models.ensemble import build_ensemble
from emolens.models.saving import load_checkpoint
from emolens.train import TrainConfig
from emolens.train.data import model_arrays
from emolens.train.distill import StudentAccuracy, ViewDistillationLoss, teacher_answers_layer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "faces"
    assert main(["data", "synth", str(out), "--train-per-class", "12", "--test-per-class", "4"]) == 0
    return out


@pytest.fixture(scope="module")
def teacher(faces, tmp_path_factory) -> Path:
    """A trained seed model (it has dropout), its card given a temperature far from 1 and a class scale."""
    run = tmp_path_factory.mktemp("runs") / "teacher"
    assert main(argv("train {faces} --epochs 2 --lr 1e-3 --out {run}", faces=faces, run=run)) == 0
    card = load_classifier(run).card
    write_card(run / "model.keras", replace(card, temperature=2.5, class_scale={"happy": 0.5}))
    return run


def test_the_teacher_inside_the_trainer_answers_a_view_as_predict_does_in_the_data_s_class_order(faces, teacher):
    classifier = load_classifier(teacher)
    assert classifier.temperature == 2.5 and classifier.class_scale is not None
    images = load_dataset(faces).split("train").images[:16]
    reverse = list(reversed(classifier.class_names))
    layer = teacher_answers_layer(str(teacher), reverse)
    views = to_model_input(images)
    answers = np.asarray(layer(views, training=True))
    assert np.allclose(answers, classifier.predict(images)[:, ::-1], atol=1e-5)
    # Frozen and in inference mode even while the student trains: its dropout does not move the answers.
    assert np.array_equal(answers, np.asarray(layer(views, training=True))) and not layer.trainable_weights


def test_a_bfloat16_run_s_teacher_computes_in_bfloat16_and_is_saved_so(faces, teacher, tmp_path):
    images = load_dataset(faces).split("train").images[:16]
    ensemble = build_ensemble([teacher, teacher], tmp_path / "ensemble.keras")  # teachers are often ensembles
    names = load_classifier(ensemble).class_names
    layer = teacher_answers_layer(str(ensemble), names, precision="bf16")
    assert {
        sub.dtype_policy.name
        for sub in layer.teacher._flatten_layers()
        if sub.weights and not isinstance(sub, keras.Model)
    } == {"mixed_bfloat16"}
    answers = np.asarray(layer(to_model_input(images)))
    assert np.allclose(answers, load_classifier(ensemble).predict(images), atol=0.02)
    inputs = keras.Input((48, 48, 1))
    keras.Model(inputs, layer(inputs)).save(tmp_path / "holder.keras")
    again = keras.models.load_model(tmp_path / "holder.keras")
    assert np.array_equal(np.asarray(again(to_model_input(images))), answers)


def test_the_loss_is_cross_entropy_against_the_target_mixed_with_the_teacher_s_answer():
    rng = np.random.default_rng(0)
    student, teacher, labels = (rng.dirichlet(np.ones(4), size=5).astype(np.float32) for _ in range(3))
    loss = ViewDistillationLoss(teacher_weight=0.5)
    value = float(loss(labels, np.concatenate([student, teacher], axis=1)))
    target = 0.5 * labels + 0.5 * teacher
    assert value == pytest.approx(float(np.mean(-(target * np.log(student)).sum(axis=1))), rel=1e-5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.teacher_weight == 0.5 and float(again(labels, np.concatenate([student, teacher], axis=1))) == value
    accuracy = StudentAccuracy()
    accuracy.update_state(np.eye(4)[student.argmax(axis=1)], np.concatenate([student, np.eye(4)[[0] * 5]], axis=1))
    assert float(accuracy.result()) == 1.0  # the student's half alone is scored


def test_the_targets_leave_the_teacher_s_share_to_the_trainer(faces, teacher):
    dataset = load_dataset(faces)
    split, names = dataset.split("train"), dataset.class_names
    _, views = model_arrays(split, names, TrainConfig(teacher=str(teacher), teacher_sees="views"))
    assert np.array_equal(views, np.eye(len(names), dtype=np.float32)[split.labels])
    _, faces_once = model_arrays(split, names, TrainConfig(teacher=str(teacher)))
    assert not np.allclose(faces_once, views)  # there, half of each target is the teacher's answer


def test_a_run_taught_view_by_view_trains_keeps_its_teacher_and_resumes_without_the_file(faces, teacher, tmp_path):
    copy = tmp_path / "teacher.keras"
    shutil.copy(teacher / "model.keras", copy)
    run = tmp_path / "student"
    args = argv(
        "train {faces} --model mini_resnet --crop 44 --precision float32 --teacher {teacher} --teacher-sees views --epochs 1 --out {run}",
        faces=faces,
        teacher=copy,
        run=run,
    )
    assert main(args) == 0
    assert not (run / "teacher_answers.npy").exists()  # nothing asked of the teacher before training
    assert json.loads((run / "config.json").read_text())["config"]["teacher_sees"] == "views"
    student = load_classifier(run)
    assert student.crop_size == 44 and student.model.output_shape == (None, 7)  # the student alone ships
    trainer, _ = load_checkpoint(run / "last.keras")
    assert trainer.output_shape == (None, 14) and isinstance(trainer.loss, ViewDistillationLoss)
    # The teacher's half answers the augmented view: the face itself at inference, a moved one in training.
    images = load_dataset(faces).split("train").images[:16]
    plain = np.asarray(trainer(to_model_input(images), training=False))[:, 7:]
    assert np.allclose(plain, load_classifier(teacher).predict(images), atol=1e-5)
    assert not np.allclose(np.asarray(trainer(to_model_input(images), training=True))[:, 7:], plain, atol=1e-3)
    copy.unlink()  # the checkpoint holds the teacher: resuming needs no file
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    history = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"] and "val_accuracy" in history[0]


def test_a_teacher_answering_views_must_be_keras_and_needs_no_test_time_augmentation(
    faces, teacher, onnx_model, tmp_path, capsys
):
    for extra, message in (
        (f"--teacher {onnx_model}", "this needs the Keras model"),
        (f"--teacher {teacher} --teacher-tta crops", "Expected teacher_tta to stay 'flip' with teacher_sees='views'"),
    ):
        run = tmp_path / "refused"
        command = "train {faces} --teacher-sees views --epochs 1 --out {run} " + extra
        assert main(argv(command, faces=faces, run=run)) == 2
        assert message in capsys.readouterr().err and not run.exists()
