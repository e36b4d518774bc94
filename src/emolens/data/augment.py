"""Training-time augmentation as Keras layers: the notebook's ImageDataGenerator, in Keras 3.

The layers act only when called with training=True, so they can sit in front of a model during fit and do
nothing during evaluation. They work on [0, 1] images from `to_model_input` on every backend. The geometric
transforms are drawn as the four Keras layers (RandomFlip, RandomRotation, RandomTranslation, RandomZoom) draw
them, but applied as one warp (emolens.data.affine): one resampling of each image instead of four.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class AugmentConfig:
    """How much to perturb each training image. Zero (or False) turns a transform off.

    Args:
        rotation: float. Largest rotation, in degrees, either way. Defaults to 10.
        shift: float. Largest width and height shift, as a fraction of the side. Defaults to 0.1.
        flip: bool. Random horizontal flips. Defaults to True.
        zoom: float. Largest zoom in or out, as a fraction. Defaults to 0 (off, as in the notebook).
        erasing: float. Probability of random erasing: one rectangle (2-33% of the image) replaced by noise,
            after the geometric transforms (Zhong et al., 2017). Defaults to 0 (off).
    """

    rotation: float = 10.0
    shift: float = 0.1
    flip: bool = True
    zoom: float = 0.0
    erasing: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.erasing <= 1:
            raise ValueError(
                f"Expected augmentation erasing (a probability) in [0, 1]. Received: erasing={self.erasing}"
            )
        for name in ("rotation", "shift", "zoom"):
            value = getattr(self, name)
            limit = 180.0 if name == "rotation" else 1.0
            if not 0 <= value < limit:
                raise ValueError(f"Expected augmentation {name} in [0, {limit}). Received: {name}={value}")

    def to_dict(self) -> dict:
        return asdict(self)


def build_augmenter(config: AugmentConfig, *, seed: int = 0, crop_shift: float = 0.0) -> keras.Sequential:
    """A Sequential of random transforms, identity at inference: flip, rotation, shift, zoom and a random crop's
    shift (`crop_shift`, a fraction of the side) as one warp (`RandomAffine`), then random erasing. Fill mode
    'nearest', as ImageDataGenerator's. It computes in float32 whatever the global dtype policy."""
    # Imported here so that AugmentConfig (part of every TrainConfig) is plain data that loads no backend.
    import keras
    from keras import layers

    from emolens.data.affine import RandomAffine

    transforms: list[layers.Layer] = []
    if config.flip or config.rotation or config.shift or config.zoom or crop_shift:
        affine = RandomAffine(
            flip=config.flip,
            rotation=config.rotation,
            shift=config.shift,
            zoom=config.zoom,
            crop_shift=crop_shift,
            seed=seed,
            dtype="float32",
        )
        transforms.append(affine)
    if config.erasing:
        # A (p, p) factor is a fixed probability p (a single float would draw the probability itself from [0, p]).
        transforms.append(
            layers.RandomErasing(
                factor=(config.erasing, config.erasing), value_range=(0, 1), seed=seed + 4, dtype="float32"
            )
        )
    return keras.Sequential(transforms, name="augment")
