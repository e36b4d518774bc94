"""A grid of training images exactly as the model sees them: decoded, scaled and augmented."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from emolens.data.augment import AugmentConfig, build_augmenter
from emolens.data.cache import load_dataset
from emolens.data.preprocess import to_model_input
from emolens.data.sources import refuse_output_inside
from emolens.plots import plot_image_grid


def preview_augmentation(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    count: int = 32,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    cache: bool = True,
) -> Path:
    """Writes a PNG grid of `count` random training images after augmentation, captioned with their class.

    Args:
        data: str or path. A dataset source with a train split.
        out: str or path. The PNG to write.
        count: int. How many images. Defaults to 32.
        augment: AugmentConfig. The augmentation to show. Defaults to AugmentConfig().
        seed: int. Which images and which random transforms. Defaults to 0.
        cache: bool. Use the decoded-dataset cache. Defaults to True.

    Returns:
        The path written.
    """
    refuse_output_inside(out, data)
    dataset = load_dataset(data, cache=cache)
    train = dataset.split("train")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(train), size=min(count, len(train)), replace=False))
    augmenter = build_augmenter(augment or AugmentConfig(), seed=seed)
    augmented = keras.ops.convert_to_numpy(augmenter(to_model_input(train.images[chosen]), training=True))
    # Back to uint8 only for drawing: the model itself sees the [0, 1] floats.
    pixels = np.clip(augmented[..., 0] * 255.0, 0, 255).round().astype(np.uint8)
    titles = [dataset.class_names[label] for label in train.labels[chosen]]
    return plot_image_grid(pixels, titles, out, title=f"Training images after augmentation ({Path(str(data)).name})")
