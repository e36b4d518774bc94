"""A compact residual CNN that trains fast on a CPU and ships in a few MB.

Measured on this project's 2-core machine (Keras 3 on TensorFlow, batch 64): this net trains at about 690
images/s against 500 for the seed CNN, with half the parameters. A depthwise-separable variant (mini-Xception
style) of the same shape ran at only 250 images/s: depthwise convolutions are memory-bound on a CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emolens.models.blocks import conv_bn_relu
from emolens.models.registry import register_model

if TYPE_CHECKING:
    import keras


def _residual_block(x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
    """Two 3x3 convolutions, the first with stride 2, added to a strided 1x1 projection of the input."""
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, strides=2, use_bias=False)(x)
    shortcut = layers.BatchNormalization()(shortcut)
    x = conv_bn_relu(x, filters, strides=2)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Add()([x, shortcut])
    return layers.Activation("relu")(x)


@register_model(
    "mini_resnet",
    description="Compact residual CNN (1.25M parameters, 5 MB): trains faster than seed on a CPU",
    learning_rate=1e-3,
)
def mini_resnet(input_shape: tuple[int, int, int] = (48, 48, 1), num_classes: int = 7) -> keras.Model:
    import keras  # here, not at the top: listing models (`emolens models`) must not load a backend
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = conv_bn_relu(inputs, 32)
    # Pool early: full-resolution wide convolutions would triple the cost for little gain on 48x48 faces.
    x = layers.MaxPooling2D(2)(x)
    x = conv_bn_relu(x, 64)
    for filters in (64, 128, 256):  # 24 -> 12 -> 6 -> 3 pixels
        x = _residual_block(x, filters)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mini_resnet")
