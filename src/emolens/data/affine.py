"""Flip, rotation, shift and zoom as one random affine warp per image: one resampling instead of four.

Keras's RandomFlip, RandomRotation, RandomTranslation and RandomZoom each resample the whole batch; on 48-pixel
images on a CPU those passes, not the model, took half of a training step (bench/train_throughput.py). The maps
they apply compose into one: for an output pixel p, the four layers in that order read the input at
F(R(T(Z(p)))), where F, R, T and Z are their own output-to-input maps, drawn from the same distributions:

    flip      x -> (w - 1) - x with probability 1/2
    rotation  about the centre by an angle uniform in [-rotation, +rotation] degrees
    shift     by dx, dy uniform in [-shift, +shift] times the width and the height
    zoom      about the centre by a factor uniform in [1 - zoom, 1 + zoom] (above 1: zoomed out)

and, for models trained on random crops, the crop's own shift C (uniform in [-crop_shift, +crop_shift], as the
RandomTranslation the trainer put before its centre crop), read last: F(R(T(Z(C(p))))).

The product is handed to `keras.ops.image.affine_transform` once (bilinear, 'nearest' fill), on every backend.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

# What a transform's parameters are called, in the order `draw` returns them.
PARAMETERS = ("flip", "angle", "dx", "dy", "zoom", "crop_dx", "crop_dy")


def _matrices(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any) -> Any:
    """Per image, the 3x3 matrix [[a, b, c], [d, e, f], [0, 0, 1]] (each argument of shape (batch,))."""
    zeros, ones = ops.zeros_like(a), ops.ones_like(a)
    return ops.reshape(ops.stack([a, b, c, d, e, f, zeros, zeros, ones], axis=1), (-1, 3, 3))


@keras.saving.register_keras_serializable(package="emolens")
class RandomAffine(keras.layers.Layer):
    """Random flip, rotation, shift and zoom of a batch (batch, height, width, channels) in one warp; the
    identity at inference.

    Args:
        flip: bool. Mirror left-right with probability 1/2.
        rotation: float. Largest rotation, in degrees, either way (0: none).
        shift: float. Largest shift, as a fraction of the width and of the height (0: none).
        zoom: float. Largest zoom in or out, as a fraction (0: none).
        crop_shift: float. Largest shift of a random crop, as a fraction of the side (0: none), drawn apart
            from `shift` and applied after everything else.
        seed: int. Seeds the draws: the same seed gives the same transforms for the same batches.

    Examples:
        >>> import numpy as np
        >>> layer = RandomAffine(flip=True, rotation=10.0, shift=0.1, zoom=0.1, seed=0)
        >>> images = np.random.default_rng(0).random((4, 48, 48, 1)).astype("float32")
        >>> bool(np.array_equal(layer(images, training=False), images)), tuple(layer(images, training=True).shape)
        (True, (4, 48, 48, 1))
    """

    def __init__(
        self,
        flip: bool = True,
        rotation: float = 0.0,
        shift: float = 0.0,
        zoom: float = 0.0,
        crop_shift: float = 0.0,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flip, self.rotation, self.shift, self.zoom, self.crop_shift = (
            bool(flip),
            float(rotation),
            float(shift),
            float(zoom),
            float(crop_shift),
        )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def draw(self, batch_size: Any) -> dict[str, Any]:
        """One transform per image: flip (0 or 1), angle (radians), dx and dy (fractions of the side), zoom, and
        the crop's crop_dx and crop_dy (fractions of the side)."""

        def uniform(bound: float) -> Any:
            return (
                keras.random.uniform((batch_size,), -bound, bound, seed=self.seed_generator)
                if bound
                else ops.zeros((batch_size,))
            )

        flip = (
            ops.cast(keras.random.uniform((batch_size,), seed=self.seed_generator) < 0.5, "float32")
            if self.flip
            else ops.zeros((batch_size,))
        )
        drawn = {
            "flip": flip,
            "angle": uniform(math.radians(self.rotation)),
            "dx": uniform(self.shift),
            "dy": uniform(self.shift),
        }
        return {
            **drawn,
            "zoom": 1.0 + uniform(self.zoom),
            "crop_dx": uniform(self.crop_shift),
            "crop_dy": uniform(self.crop_shift),
        }

    @staticmethod
    def transforms(drawn: dict[str, Any], height: Any, width: Any) -> Any:
        """The drawn transforms as `affine_transform`'s rows of 8 (output pixel -> input pixel), one per image."""
        w, h = ops.cast(width, "float32"), ops.cast(height, "float32")
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        flip, angle, zoom = drawn["flip"], drawn["angle"], drawn["zoom"]
        zeros, ones = ops.zeros_like(angle), ops.ones_like(angle)
        cos, sin = ops.cos(angle), ops.sin(angle)
        mirrored = _matrices(1.0 - 2.0 * flip, zeros, flip * (w - 1.0), zeros, ones, zeros)
        rotated = _matrices(cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy)
        shifted = _matrices(ones, zeros, -drawn["dx"] * w, zeros, ones, -drawn["dy"] * h)
        zoomed = _matrices(zoom, zeros, cx * (1.0 - zoom), zeros, zoom, cy * (1.0 - zoom))
        cropped = _matrices(ones, zeros, -drawn["crop_dx"] * w, zeros, ones, -drawn["crop_dy"] * h)
        combined = ops.matmul(ops.matmul(ops.matmul(ops.matmul(mirrored, rotated), shifted), zoomed), cropped)
        return ops.concatenate(
            [ops.reshape(combined[:, :2, :], (-1, 6)), ops.zeros((ops.shape(combined)[0], 2))], axis=1
        )

    def call(self, images: Any, training: bool = False) -> Any:
        if not training:
            return images
        shape = ops.shape(images)
        matrices = self.transforms(self.draw(shape[0]), shape[1], shape[2])
        warped = ops.image.affine_transform(
            ops.cast(images, "float32"), matrices, interpolation="bilinear", fill_mode="nearest"
        )
        return ops.cast(warped, images.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        settings = {
            "flip": self.flip,
            "rotation": self.rotation,
            "shift": self.shift,
            "zoom": self.zoom,
            "crop_shift": self.crop_shift,
        }
        return {**super().get_config(), **settings, "seed": self.seed}
