"""A BatchNorm VGG-style network, after the best published single FER2013 model (Khaireddin and Chen, 2021).

Four stages of two 3x3 convolutions (64, 128, 256, 512 filters), each followed by BatchNorm and ReLU, a 2x2 max
pool per stage (48 -> 3 pixels), then two dense layers. The paper's dense layers have 4,096 units; 1,024 here
keeps the net near 10M parameters, a size that still fits a GPU run of a few hours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emolens.models.architectures import register_model
from emolens.models.blocks import conv_bn_relu

if TYPE_CHECKING:
    import keras


@register_model(
    "vgg",
    description="BatchNorm VGG-style net: 4 stages of two 3x3 convs (64-512), dense 1024 x2 (10.4M parameters); for a GPU",
    learning_rate=1e-3,
)
def vgg(input_shape: tuple[int, int, int] = (48, 48, 1), num_classes: int = 7) -> keras.Model:
    import keras  # here, not at the top: listing models (`emolens models`) must not load a backend
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters in (64, 128, 256, 512):
        x = conv_bn_relu(conv_bn_relu(x, filters), filters)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(1024, activation="relu")(x)
        x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="vgg")
