"""The two seed systems: the CNN of the popular FER2013 Keras notebook, and its BatchNorm variant.

Both follow the notebook layer for layer; `seed_bn` adds BatchNormalization after each convolution, as the
second seed notebook does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emolens.models.architectures import register_model

if TYPE_CHECKING:
    import keras
    from keras import layers


def _seed_cnn(name: str, input_shape: tuple[int, int, int], num_classes: int, batch_norm: bool) -> keras.Model:
    import keras  # here, not at the top: listing models (`emolens models`) must not load a backend
    from keras import layers

    def conv(filters: int) -> list[layers.Layer]:
        if not batch_norm:
            return [layers.Conv2D(filters, 3, activation="relu")]
        # BatchNorm between the convolution and its activation, as the BN notebook orders them.
        return [layers.Conv2D(filters, 3), layers.BatchNormalization(), layers.Activation("relu")]

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            *conv(32),
            *conv(64),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            *conv(128),
            layers.MaxPooling2D(2),
            *conv(128),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(1024, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name=name,
    )


@register_model(
    "seed",
    description="The FER2013 notebook's CNN: 4 conv, 3 pool, dense 1024 (about 63% published)",
    learning_rate=1e-4,
)
def seed(input_shape: tuple[int, int, int] = (48, 48, 1), num_classes: int = 7) -> keras.Model:
    return _seed_cnn("seed", input_shape, num_classes, batch_norm=False)


@register_model(
    "seed_bn", description="The seed CNN with BatchNormalization after each convolution", learning_rate=1e-4
)
def seed_bn(input_shape: tuple[int, int, int] = (48, 48, 1), num_classes: int = 7) -> keras.Model:
    return _seed_cnn("seed_bn", input_shape, num_classes, batch_norm=True)
