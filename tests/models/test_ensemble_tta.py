"""Test-time augmentation and ensembles: the averages they promise, through the API and the CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from conftest import ASTRONAUT, CLASSES, argv, write_tree
from emolens.cli import main
from emolens.errors import EmolensError
from emolens.models import build_model
from emolens.models.classifier import load_classifier, load_classifiers
from emolens.models.ensemble import build_ensemble
from emolens.models.saving import save_model


def member(path, seed: int, class_names=CLASSES):
    keras.utils.set_random_seed(seed)
    model = build_model("mini_resnet", num_classes=len(class_names))
    model(np.zeros((1, 48, 48, 1), "float32"))
    return save_model(
        model,
        path,
        {"model": "mini_resnet", "class_names": list(class_names), "input_shape": [48, 48, 1], "train_sharpness": 40.0},
    )


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    return [member(folder / "a.keras", 1), member(folder / "b.keras", 2)]


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)


def test_flip_averages_each_face_with_its_mirror(members, faces):
    classifier = load_classifier(members[0])
    plain, mirrored = classifier.predict(faces), classifier.predict(faces[:, :, ::-1])
    np.testing.assert_allclose(classifier.predict(faces, tta="flip"), (plain + mirrored) / 2, atol=1e-6)
    assert not np.allclose(plain, mirrored, atol=1e-4)  # the mirror really is another view
    with pytest.raises(EmolensError, match="test-time augmentation"):
        classifier.predict(faces, tta="crops")


def test_an_ensemble_is_the_mean_of_its_members(members, faces):
    a, b = (load_classifier(path) for path in members)
    ensemble = load_classifiers(members)
    np.testing.assert_allclose(ensemble.predict(faces), (a.predict(faces) + b.predict(faces)) / 2, atol=1e-6)


def test_members_with_classes_in_another_order_are_matched_by_name(members, faces, tmp_path):
    reordered = member(tmp_path / "c.keras", 1, class_names=CLASSES[::-1])
    ensemble = load_classifiers([members[0], reordered])
    own, other = load_classifier(members[0]).predict(faces), load_classifier(reordered).predict(faces)[:, ::-1]
    np.testing.assert_allclose(ensemble.predict(faces), (own + other) / 2, atol=1e-6)


def test_saved_ensemble_file_equals_the_live_average(members, faces, tmp_path):
    path = build_ensemble(members, tmp_path / "ensemble.keras")
    saved = load_classifier(path)
    assert saved.card["model"] == "ensemble" and len(saved.card["members"]) == 2
    np.testing.assert_allclose(saved.predict(faces), load_classifiers(members).predict(faces), atol=1e-5)


def test_ensemble_refuses_mismatched_members(members, tmp_path):
    other = member(tmp_path / "d.keras", 3, class_names=("angry", "happy", "neutral"))
    with pytest.raises(EmolensError, match="cannot be ensembled"):
        build_ensemble([members[0], other], tmp_path / "e.keras")
    with pytest.raises(EmolensError, match="at least two"):
        build_ensemble(members[:1], tmp_path / "e.keras")
    with pytest.raises(EmolensError, match=r"\.keras file"):
        build_ensemble(members, tmp_path / "e.onnx")


def test_cli_evaluates_several_models_as_one_ensemble_with_tta(members, tmp_path, capsys):
    data = write_tree(tmp_path / "data", {"train": 2, "test": 4})
    assert main(["ensemble", *map(str, members), "--out", str(tmp_path / "e.keras")]) == 0
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "e.keras"),
                str(data),
                "--json",
                "--tta",
                "flip",
                "--out",
                str(tmp_path / "saved"),
            ]
        )
        == 0
    )
    saved = json.loads(capsys.readouterr().out)
    assert (
        main(["evaluate", *map(str, members), str(data), "--json", "--tta", "flip", "--out", str(tmp_path / "live")])
        == 0
    )
    live = json.loads(capsys.readouterr().out)
    assert saved["test_time_augmentation"] == live["test_time_augmentation"] == "flip"
    assert saved["confusion_matrix"] == live["confusion_matrix"] and live["model"].startswith("ensemble of")
    with pytest.raises(SystemExit) as usage_error:  # argparse lists the choices and exits 2
        main(["evaluate", str(members[0]), str(data), "--tta", "sideways"])
    assert usage_error.value.code == 2


def test_predict_with_flip_averages_the_bundled_models_two_views(capsys):
    from emolens.predict import Recognizer

    photo = ASTRONAUT
    (plain,), (flipped,) = Recognizer().predict(photo), Recognizer(tta="flip").predict(photo)
    plain, flipped = plain.faces, flipped.faces
    assert [face.box for face in plain] == [face.box for face in flipped] and flipped[0].emotion == "happy"
    assert flipped[0].probabilities != plain[0].probabilities
    assert main(["predict", str(photo), "--json", "--tta", "flip"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["probabilities"] == flipped[0].probabilities


def test_ten_crops_are_the_centre_and_corners_and_their_mirrors(tmp_path, faces):
    keras.utils.set_random_seed(0)
    model = build_model("mini_resnet", input_shape=(44, 44, 1), num_classes=3)
    path = save_model(
        model, tmp_path / "cropped.keras", {"class_names": list(CLASSES), "input_shape": [44, 44, 1], "image_size": 48}
    )
    classifier = load_classifier(path)
    assert (classifier.input_size, classifier.crop_size) == (48, 44)
    x = faces[..., None].astype("float32") / 255
    views = classifier.views(x, "crops")
    assert len(views) == 10 and all(view.shape == (6, 44, 44, 1) for view in views)
    np.testing.assert_array_equal(views[0], keras.ops.convert_to_numpy(keras.layers.CenterCrop(44, 44)(x)))
    np.testing.assert_array_equal(views[1], x[:, :44, :44])
    np.testing.assert_array_equal(views[4], x[:, 4:, 4:])
    np.testing.assert_array_equal(views[5], views[0][:, :, ::-1])
    assert classifier.predict(faces, tta="crops").shape == (6, 3)
    uncropped = load_classifier(member(tmp_path / "u.keras", 1))
    with pytest.raises(EmolensError, match="trained on crops"):
        uncropped.predict(faces, tta="crops")


@pytest.mark.slow
def test_a_model_trained_on_crops_evaluates_and_predicts_on_whole_faces(tmp_path, capsys):

    data = write_tree(tmp_path / "data", {"train": 8, "test": 3})
    run = tmp_path / "run"
    assert (
        main(
            argv("train {data} --model mini_resnet --crop 40 --epochs 1 --batch-size 8 --out {run}", data=data, run=run)
        )
        == 0
    )
    capsys.readouterr()  # Keras's epoch lines
    classifier = load_classifier(run)
    assert classifier.card["input_shape"] == [40, 40, 1] and classifier.card["image_size"] == 48
    for tta in ("none", "flip", "crops"):
        assert main(["evaluate", str(run), str(data), "--tta", tta, "--json", "--out", str(tmp_path / tta)]) == 0
        assert json.loads(capsys.readouterr().out)["test_time_augmentation"] == tta
    photo = ASTRONAUT
    assert main(["predict", str(photo), "--model", str(run), "--tta", "crops", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["faces"]) == 1
    assert main(["train", str(data), "--crop", "12", "--epochs", "1", "--out", str(tmp_path / "bad")]) == 2
