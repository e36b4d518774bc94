"""The rules of model input are one set: a face reaches the network as the same pixels from a training file and
from a photo, and the inference crop is the one training validated with."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from emolens.data.cache import load_dataset
from emolens.data.preprocess import centre_crop, gray_from_rgb, resize_face, to_model_input
from emolens.predict.detectors import Framing, crop_faces
from emolens.predict.picture import to_gray


def _colour_face(side: int, seed: int = 0) -> np.ndarray:
    """An RGB picture with structure at every scale (gradients, edges and noise), so resampling differences show."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:side, :side] / side
    rgb = np.stack([255 * x, 255 * y, 128 + 100 * np.sin(12 * x * y)], axis=-1)
    rgb[side // 3 : side // 2, side // 4 : 3 * side // 4] = (240, 30, 60)
    return np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("side,mode", [(200, "RGB"), (31, "RGB"), (120, "L"), (48, "RGB")])
def test_a_face_file_and_the_same_face_in_a_photo_give_the_same_model_input(tmp_path, side, mode):
    face = _colour_face(side)
    face_image = Image.fromarray(face) if mode == "RGB" else Image.fromarray(gray_from_rgb(face))
    folder = tmp_path / "data" / "train" / "happy"
    folder.mkdir(parents=True)
    face_image.save(folder / "face.png")
    (tmp_path / "data" / "train" / "sad").mkdir()
    face_image.save(tmp_path / "data" / "train" / "sad" / "other.png")
    trained_on = load_dataset(tmp_path / "data", cache=False).split("train").images[0]

    # The same face inside a larger photo, cropped by the predictor with a box that is exactly its square.
    photo = np.full((side + 70, side + 90, 3), 90, np.uint8)
    photo[30 : 30 + side, 50 : 50 + side] = np.asarray(face_image.convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    gray, _ = to_gray(buffer.getvalue())
    predicted_on = crop_faces(gray, np.array([[50, 30, side, side]]), Framing(scale=1.0, dy=0.0))[0]

    assert trained_on.shape == predicted_on.shape == (48, 48)
    assert np.array_equal(trained_on, predicted_on)
    assert np.array_equal(to_model_input(trained_on), to_model_input(predicted_on))


def test_the_inference_centre_crop_is_the_one_training_validates_with():
    import keras

    images = to_model_input(np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8))
    for crop in (44, 40, 47):
        expected = keras.ops.convert_to_numpy(keras.layers.CenterCrop(crop, crop)(images))
        assert np.array_equal(centre_crop(images, crop), expected)


def test_resize_averages_when_shrinking():
    # A one-pixel checkerboard shrunk by two: area averaging gives flat gray, point sampling would give stripes.
    board = (np.indices((96, 96)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert np.abs(resize_face(board, 48).astype(int) - 128).max() <= 1


def test_the_docstring_examples_hold():
    import doctest

    from emolens.data import preprocess

    assert doctest.testmod(preprocess).failed == 0
