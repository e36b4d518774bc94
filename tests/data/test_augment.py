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
    for original, seen in zip(x, out, strict=True):
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


# --- the one warp: flip, rotation, shift, zoom and the crop's shift, composed ------------------------------------

FIXED = {"flip": 0.0, "angle": 0.0, "dx": 0.0, "dy": 0.0, "zoom": 1.0, "crop_dx": 0.0, "crop_dy": 0.0}


def warped(x: np.ndarray, **parameters: float) -> np.ndarray:
    """`x` warped once by the transform these parameters (the rest as FIXED, the identity) describe."""
    from emolens.data.affine import RandomAffine

    drawn = {
        name: keras.ops.convert_to_tensor(np.full(len(x), value, np.float32))
        for name, value in {**FIXED, **parameters}.items()
    }
    matrices = RandomAffine.transforms(drawn, x.shape[1], x.shape[2])
    return keras.ops.convert_to_numpy(
        keras.ops.image.affine_transform(x, matrices, interpolation="bilinear", fill_mode="nearest")
    )


def test_each_transform_alone_moves_pixels_exactly_as_it_says():
    x = batch()
    np.testing.assert_array_equal(warped(x), x)
    np.testing.assert_array_equal(warped(x, flip=1.0), x[:, :, ::-1])
    shifted = warped(x, dx=2 / 48, dy=-3 / 48)  # right 2, up 3; the edge repeats ('nearest')
    np.testing.assert_array_equal(shifted[:, :-3, 2:], x[:, 3:, :-2])
    np.testing.assert_array_equal(shifted[:, :-3, :2], np.repeat(x[:, 3:, :1], 2, axis=2))
    turned = warped(x, angle=np.pi / 2)
    assert min(np.abs(turned - np.rot90(x, k, axes=(1, 2))).max() for k in (1, 3)) < 1e-5
    odd = np.random.default_rng(1).random((2, 49, 49, 1)).astype(np.float32)  # a centre pixel: exact half-way points
    zoomed_in = warped(odd, zoom=0.5)  # the middle half, twice as large: output 2k is input 12 + k
    np.testing.assert_allclose(zoomed_in[:, ::2, ::2], odd[:, 12:37, 12:37], atol=1e-6)


def test_the_composition_is_the_four_keras_layers_in_their_order():
    """F(R(T(Z(C(p))))): the image is flipped, then shifted (the other order would shift the mirror image left)."""
    x = batch()
    np.testing.assert_array_equal(warped(x, flip=1.0, dx=2 / 48), warped(x[:, :, ::-1], dx=2 / 48))
    # A crop shift then a shift: one shift of their sum.
    np.testing.assert_array_equal(warped(x, dx=1 / 48, crop_dx=2 / 48), warped(x, dx=3 / 48))


def test_the_draws_follow_the_configured_distributions():
    from emolens.data.affine import RandomAffine

    layer = RandomAffine(flip=True, rotation=10.0, shift=0.1, zoom=0.2, crop_shift=0.05, seed=7)
    drawn = {name: keras.ops.convert_to_numpy(value) for name, value in layer.draw(20_000).items()}
    assert set(np.unique(drawn["flip"])) == {0.0, 1.0} and abs(drawn["flip"].mean() - 0.5) < 0.02
    for name, low, high in (
        ("angle", -np.radians(10), np.radians(10)),
        ("dx", -0.1, 0.1),
        ("dy", -0.1, 0.1),
        ("zoom", 0.8, 1.2),
        ("crop_dx", -0.05, 0.05),
    ):
        values = drawn[name]
        assert low <= values.min() and values.max() <= high, name
        # Uniform: its mean mid-range, its spread (high - low) / sqrt(12), each tenth of the range about as full.
        assert abs(values.mean() - (low + high) / 2) < 0.02 * (high - low), name
        assert abs(values.std() - (high - low) / np.sqrt(12)) < 0.02 * (high - low), name
        counts, _ = np.histogram(values, bins=10, range=(low, high))
        assert counts.min() > 0.9 * len(values) / 10, name
    assert np.corrcoef(drawn["dx"], drawn["dy"])[0, 1] < 0.05, "the two shifts are drawn apart"
    off = {
        name: keras.ops.convert_to_numpy(value) for name, value in RandomAffine(flip=False, seed=7).draw(100).items()
    }
    assert all(np.all(off[name] == (1.0 if name == "zoom" else 0.0)) for name in off)


def test_a_fixed_seed_reproduces_a_batch_and_another_seed_does_not():
    from emolens.data.affine import RandomAffine

    x = batch()

    def augmented(seed: int) -> np.ndarray:
        return keras.ops.convert_to_numpy(
            RandomAffine(flip=True, rotation=10.0, shift=0.1, zoom=0.1, seed=seed)(x, training=True)
        )

    np.testing.assert_array_equal(augmented(3), augmented(3))
    assert not np.allclose(augmented(3), augmented(4))


def test_the_warp_is_the_same_on_every_backend(tmp_path):
    """The same parameters give the same pixels on JAX and torch as on this process's backend."""
    import importlib.util
    import os
    import subprocess
    import sys

    x = batch()
    parameters = {"flip": 1.0, "angle": 0.1, "dx": 0.05, "dy": -0.03, "zoom": 1.1, "crop_dx": 0.02, "crop_dy": 0.01}
    expected = warped(x, **parameters)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, json, numpy as np, keras; sys.path.insert(0, 'tests/data'); from test_augment import warped; "
        f"np.save({str(tmp_path / 'out.npy')!r}, warped(np.load({str(tmp_path / 'x.npy')!r}), **json.loads(sys.argv[1])))"
    )
    import json

    from conftest import ROOT

    for backend in ("jax", "torch"):
        if importlib.util.find_spec(backend) is None:
            continue
        env = {**os.environ, "KERAS_BACKEND": backend}
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(parameters)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-4, err_msg=backend)
