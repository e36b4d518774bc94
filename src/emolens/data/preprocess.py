"""The rules of model input, one function each, for training, evaluation, prediction and export alike.

decode (emolens.data.decode) -> gray (`gray_from_rgb`) -> resize (`resize_face`) -> crop (`centre_crop`, or
ten crops for test-time augmentation) -> scale (`to_model_input`). The training loader and the predictor call
these same functions, so a face reaches the network as the same pixels whichever way it came (tested).
"""

from __future__ import annotations

import cv2
import numpy as np

# What model cards say about the input a model expects; the functions below are its one implementation.
PREPROCESSING = "decode to 48x48 uint8 grayscale; scale to [0, 1] (emolens.data.preprocess.to_model_input)"


def gray_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 gray, by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, rounded).

    Examples:
        >>> gray_from_rgb(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)).tolist()
        [[76, 150, 29]]
    """
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def resize_face(gray: np.ndarray, size: int) -> np.ndarray:
    """A (H, W) uint8 picture resized to (size, size): area averaging when shrinking (no aliasing), bilinear
    when enlarging. A non-square picture is squashed, as Keras's `flow_from_directory` does with face files.

    Examples:
        >>> resize_face(np.full((96, 96), 200, np.uint8), 48).shape
        (48, 48)
    """
    if gray.shape == (size, size):
        return gray
    interpolation = cv2.INTER_AREA if gray.shape[0] > size or gray.shape[1] > size else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interpolation)


def centre_crop(images: np.ndarray, crop: int) -> np.ndarray:
    """The central (crop, crop) of images (N, H, W, ...), as keras.layers.CenterCrop takes it when training validates.

    Examples:
        >>> centre_crop(np.zeros((2, 48, 48, 1)), 44).shape
        (2, 44, 44, 1)
    """
    top, left = (images.shape[1] - crop) // 2, (images.shape[2] - crop) // 2
    return images[:, top : top + crop, left : left + crop]


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Scales uint8 grayscale images to float32 in [0, 1] with a channel axis.

    Training, evaluation and prediction all call this, so they can never disagree about scaling
    (a classic bug: training on 0-1 and predicting on 0-255).

    Args:
        images: numpy array of shape (N, H, W) or (H, W), dtype uint8.

    Returns:
        A float32 array of shape (N, H, W, 1).

    Examples:
        >>> inputs = to_model_input(np.full((2, 48, 48), 255, np.uint8))
        >>> inputs.shape, inputs.dtype, float(inputs.max())
        ((2, 48, 48, 1), dtype('float32'), 1.0)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"Expected uint8 images (decoded pixels 0-255). Received: dtype={images.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"Expected images of shape (N, H, W). Received: shape={images.shape}")
    return (images.astype(np.float32) * np.float32(1.0 / 255.0))[..., None]
