"""Model architectures by name: the registry, and one factory that builds any of them.

Every module of this package is a plug-in: a family of architectures whose builders register themselves with
`@register_model` (as `notebook.py`, the seed CNNs). The registry imports them all the first time it is asked
(`emolens._plugins`), so adding an architecture is adding a file here. Layers shared by several families live
beside the package, in `models/blocks.py`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emolens._plugins import import_plugins, plugin_rank
from emolens.errors import EmolensError

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: how to build it and the learning rate its recipe starts from.

    Examples:
        >>> spec = get_model_spec("seed")
        >>> spec.name, spec.learning_rate
        ('seed', 0.0001)
    """

    name: str
    build: Callable[..., keras.Model]
    description: str
    learning_rate: float


_MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, *, description: str, learning_rate: float) -> Callable:
    """Decorator: registers `build(input_shape, num_classes) -> keras.Model` under `name`.

    Examples:
        >>> @register_model("tiny", description="a one-layer example", learning_rate=1e-3)   # doctest: +SKIP
        ... def tiny(input_shape=(48, 48, 1), num_classes=7):
        ...     import keras
        ...     inputs = keras.Input(input_shape)
        ...     pooled = keras.layers.GlobalAveragePooling2D()(inputs)
        ...     return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(pooled), name="tiny")
    """

    def add(build: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _MODELS:
            raise ValueError(f"A model named '{name}' is already registered.")
        _MODELS[name] = ModelSpec(name, build, description, learning_rate)
        return build

    return add


def _models() -> dict[str, ModelSpec]:
    # The plug-ins import Keras inside their builders, so listing never loads a backend.
    import_plugins(__name__)
    return _MODELS


def list_models() -> list[ModelSpec]:
    """Every registered model: the plug-in modules in name order (notebook.py's seed models first), each
    module's in the order it registers them.

    Examples:
        >>> [spec.name for spec in list_models()]
        ['seed', 'seed_bn', 'mini_resnet', 'resnet', 'vgg']
    """
    return sorted(_models().values(), key=lambda spec: plugin_rank(__name__, spec.build.__module__))


def get_model_spec(name: str) -> ModelSpec:
    """The spec registered under `name`; an unknown name is an error that suggests the close ones.

    Examples:
        >>> get_model_spec("mini_resnet").name
        'mini_resnet'
    """
    if name not in _models():
        close = difflib.get_close_matches(name, _MODELS, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(spec.name for spec in list_models())
        raise EmolensError(f"unknown model '{name}'.{hint} Known models: {known} (see `emolens models`).")
    return _MODELS[name]


def build_model(name: str, *, input_shape: tuple[int, int, int] = (48, 48, 1), num_classes: int = 7) -> keras.Model:
    """Builds the registered model `name` (uncompiled) for images of `input_shape` scaled to [0, 1].

    Args:
        name: str. A name from `list_models()`, e.g. "seed".
        input_shape: tuple. (height, width, channels). Defaults to (48, 48, 1).
        num_classes: int. Size of the softmax output. Defaults to 7.

    Returns:
        An uncompiled keras.Model whose output is class probabilities.

    Examples:
        >>> build_model("mini_resnet", input_shape=(44, 44, 1), num_classes=7).output_shape
        (None, 7)
    """
    return get_model_spec(name).build(input_shape=input_shape, num_classes=num_classes)
