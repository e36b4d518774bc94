"""The one function that turns decoded images into model input, for training and inference alike."""

from __future__ import annotations

import numpy as np

# What model cards say about the input a model expects; `to_model_input` is its one implementation.
PREPROCESSING = "decode to 48x48 uint8 grayscale; scale to [0, 1] (emolens.data.preprocess.to_model_input)"


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Scales uint8 grayscale images to float32 in [0, 1] with a channel axis.

    Training, evaluation and prediction all call this, so they can never disagree about scaling
    (a classic bug: training on 0-1 and predicting on 0-255).

    Args:
        images: numpy array of shape (N, H, W) or (H, W), dtype uint8.

    Returns:
        A float32 array of shape (N, H, W, 1).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"Expected uint8 images (decoded pixels 0-255). Received: dtype={images.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"Expected images of shape (N, H, W). Received: shape={images.shape}")
    return (images.astype(np.float32) * np.float32(1.0 / 255.0))[..., None]
