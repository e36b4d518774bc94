"""Building blocks shared by emolens's architectures."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def conv_bn_relu(x: keras.KerasTensor, filters: int, strides: int = 1) -> keras.KerasTensor:
    """A 3x3 convolution, BatchNorm, ReLU. No bias before BatchNorm: its shift makes one redundant."""
    from keras import layers

    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)
