import keras
import numpy as np
import pytest

from emolens.errors import EmolensError
from emolens.models import build_model, get_model_spec, list_models
from emolens.models.saving import load_model, read_card, save_model
from emolens.train.config import TrainConfig
from emolens.train.trainer import make_optimizer


def layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_registry_lists_the_seed_models_first():
    assert [spec.name for spec in list_models()] == ["seed", "seed_bn", "mini_resnet", "resnet", "vgg"]


def test_vgg_is_four_batchnorm_stages_of_two_convolutions():
    model = build_model("vgg")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert layer_kinds(model).count("BatchNormalization") == 8 and layer_kinds(model).count("MaxPooling2D") == 4
    assert model.output_shape == (None, 7) and model.count_params() == 10_466_375


def test_mini_resnet_is_a_small_residual_net():
    model = build_model("mini_resnet")
    assert layer_kinds(model).count("Add") == 3
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    assert model.count_params() == 1_250_983
    probabilities = np.asarray(model(np.zeros((2, 48, 48, 1), "float32")))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_resnet_keeps_full_resolution_until_its_first_pool_and_fits_the_10_mb_budget():
    model = build_model("resnet", input_shape=(44, 44, 1))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.output.shape[1] for c in convs[:2]] == [44, 44] and convs[1].filters == 64
    # Four blocks; only the two that change width or stride project their input.
    assert layer_kinds(model).count("Add") == 4 and sum(c.kernel_size == (1, 1) for c in convs) == 2
    assert model.output_shape == (None, 7) and model.count_params() == 2_428_327  # 9.7 MB as float32
    probabilities = np.asarray(model(np.zeros((2, 44, 44, 1), "float32")))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_model_suggests_close_names():
    with pytest.raises(EmolensError, match="Did you mean 'seed'"):
        get_model_spec("sead")


def test_seed_is_the_notebook_architecture():
    model = build_model("seed")
    assert layer_kinds(model) == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 128] and all(c.kernel_size == (3, 3) for c in convs)
    assert [d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)] == [0.25, 0.25, 0.5]
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    assert model.count_params() == 2_345_607


def test_seed_bn_adds_batchnorm_after_each_convolution():
    kinds = layer_kinds(build_model("seed_bn"))
    assert kinds.count("BatchNormalization") == 4
    for i, kind in enumerate(kinds):
        if kind == "Conv2D":
            assert kinds[i + 1] == "BatchNormalization"


def test_outputs_are_probabilities():
    probabilities = np.asarray(build_model("seed", num_classes=5)(np.random.rand(3, 48, 48, 1).astype("float32")))
    assert probabilities.shape == (3, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_optimizer_reproduces_the_old_per_step_decay():
    optimizer = make_optimizer(TrainConfig(learning_rate=1e-4), steps_per_epoch=100)
    assert isinstance(optimizer, keras.optimizers.Adam) and not isinstance(optimizer, keras.optimizers.AdamW)
    for step in (0, 1, 1000, 400_000):
        expected = 1e-4 / (1 + 1e-6 * step)
        assert float(optimizer._learning_rate(step)) == pytest.approx(expected, rel=1e-6)


def test_save_and_load_round_trip_with_card(tmp_path):
    model = build_model("seed_bn", num_classes=3)
    x = np.random.rand(2, 48, 48, 1).astype("float32")
    card = {"class_names": ["a", "b", "c"], "model": "seed_bn", "epoch": 3}
    path = save_model(model, tmp_path / "m.keras", card)
    loaded, loaded_card = load_model(path, compile=False)
    # Stored whole, with the fields a card always has filled in.
    assert (
        loaded_card == {**card, "format": 1, "input_shape": [48, 48, 1], "image_size": 48}
        and read_card(path) == loaded_card
    )
    assert loaded_card.class_names == ("a", "b", "c") and loaded_card.details == {"epoch": 3}
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    # Plain Keras still reads the file: the card is an extra member it ignores.
    keras.models.load_model(path, compile=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


def test_foreign_keras_file_gets_fer2013_classes(tmp_path):
    model = build_model("seed")
    model.save(tmp_path / "plain.keras")
    _, card = load_model(tmp_path / "plain.keras", compile=False)
    assert card["class_names"][0] == "angry" and len(card["class_names"]) == 7


def test_a_foreign_colour_model_is_a_one_line_error(tmp_path):
    build_model("seed", input_shape=(48, 48, 3)).save(tmp_path / "rgb.keras")
    with pytest.raises(EmolensError, match=r"input_shape \[48, 48, 3\] is not \[side, side, 1\]"):
        load_model(tmp_path / "rgb.keras", compile=False)


def test_loading_a_missing_or_broken_file_is_an_error(tmp_path):
    with pytest.raises(EmolensError, match="no model file"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(EmolensError, match="not a readable"):
        load_model(tmp_path / "bad.keras")
