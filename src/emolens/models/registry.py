"""Models by name: each architecture file registers its builders here, and one factory builds any of them."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def _load_builtin_models() -> None:
    # Importing an architecture module registers it; done lazily so that listing names stays cheap to call.
    # The modules import Keras inside their builders, so listing never loads a backend.
    # Listed in this order: the seed models first.
    from emolens.models import seed  # noqa: F401, I001
    from emolens.models import compact  # noqa: F401
    from emolens.models import vgg  # noqa: F401


def list_models() -> list[ModelSpec]:
    """Every registered model, in registration order.

    Examples:
        >>> [spec.name for spec in list_models()]
        ['seed', 'seed_bn', 'mini_resnet', 'resnet', 'vgg']
    """
    _load_builtin_models()
    return list(_MODELS.values())


def get_model_spec(name: str) -> ModelSpec:
    """The spec registered under `name`; an unknown name is an error that suggests the close ones.

    Examples:
        >>> get_model_spec("mini_resnet").name
        'mini_resnet'
    """
    _load_builtin_models()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise EmolensError(f"unknown model '{name}'.{hint} Known models: {', '.join(_MODELS)} (see `emolens models`).")
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
