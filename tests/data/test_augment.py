import keras
import numpy as np
import pytest

from emolens.data.augment import AugmentConfig, build_augmenter
from emolens.data.preprocess import to_model_input


def batch():
    rng = np.random.default_rng(0)
    return to_model_input(rng.integers(0, 256, (8, 48, 48), dtype=np.uint8))


def test_preprocessing_scales_to_unit_range_with_a_channel():
    out = to_model_input(np.array([[[0, 255]]], np.uint8))
    assert out.dtype == np.float32 and out.shape == (1, 1, 2, 1)
    assert out[0, 0, :, 0].tolist() == [0.0, 1.0]


def test_preprocessing_rejects_unscaled_floats():
    with pytest.raises(TypeError, match="uint8"):
        to_model_input(np.zeros((1, 48, 48), np.float32))


def test_augmenter_is_identity_at_inference_and_random_in_training():
    x = batch()
    augmenter = build_augmenter(AugmentConfig(), seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmenter(x, training=False)), x)
    trained = keras.ops.convert_to_numpy(augmenter(x, training=True))
    assert trained.shape == x.shape and not np.allclose(trained, x)
    assert trained.min() >= -1e-6 and trained.max() <= 1 + 1e-6


def test_flip_only_produces_originals_or_mirrors():
    x = batch()
    augmenter = build_augmenter(AugmentConfig(rotation=0, shift=0, flip=True), seed=3)
    out = keras.ops.convert_to_numpy(augmenter(x, training=True))
    for original, seen in zip(x, out):
        assert np.allclose(seen, original) or np.allclose(seen, original[:, ::-1])


def test_everything_off_is_an_empty_augmenter():
    assert build_augmenter(AugmentConfig(rotation=0, shift=0, flip=False, zoom=0)).layers == []


def test_erasing_blanks_one_rectangle_per_image_and_only_in_training():
    x = np.full((16, 48, 48, 1), 0.5, np.float32)
    augmenter = build_augmenter(AugmentConfig(rotation=0, shift=0, flip=False, erasing=1.0), seed=5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmenter(x, training=False)), x)
    out = keras.ops.convert_to_numpy(augmenter(x, training=True))[..., 0]
    for image in out:
        rows, cols = np.nonzero(np.abs(image - 0.5) > 1e-6)
        assert len(rows) > 0, "erasing with probability 1 left an image untouched"
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert len(rows) > 0.5 * box  # the changed pixels fill one rectangle, not scattered spots
        assert box <= 0.5 * 48 * 48
    assert build_augmenter(AugmentConfig(rotation=0, shift=0, flip=False, erasing=0.0)).layers == []


@pytest.mark.parametrize("field,value", [("rotation", -1), ("shift", 1.5), ("zoom", -0.1), ("erasing", 1.5)])
def test_bad_settings_fail_at_construction(field, value):
    with pytest.raises(ValueError, match=f"Received: {field}="):
        AugmentConfig(**{field: value})
