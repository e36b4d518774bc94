"""The emolens model card (`ModelCard`), read from a model file and checked against the network it describes.

The card travels inside the model file (`emolens.json` in a .keras zip, the `emolens` metadata property of an
.onnx file) and says what inference needs: the class names, in output order, and the input size. A card that
disagrees with its network would mislabel every answer, so it is checked once, where a model is loaded. This
module imports neither Keras nor ONNX Runtime: both loaders use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from emolens.errors import EmolensError

CARD_MEMBER = "emolens.json"  # in a .keras zip
ONNX_CARD_KEY = "emolens"  # an .onnx file's metadata property
_REMEDY = "Retrain it, or export it again with `emolens export`."


def parse_card(text: str | bytes, path: str | os.PathLike) -> dict[str, Any]:
    """The card stored in `path` as JSON text.

    Raises:
        EmolensError: the text is not a JSON object.
    """
    try:
        card = json.loads(text)
    except ValueError as error:
        raise EmolensError(f"{os.fspath(path)}: its emolens card is not valid JSON ({error}). {_REMEDY}") from error
    if not isinstance(card, dict):
        raise EmolensError(f"{os.fspath(path)}: its emolens card is not a JSON object. {_REMEDY}")
    return card


def _side(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@dataclass(frozen=True, eq=False)
class ModelCard(Mapping[str, Any]):
    """What a model file says about itself: typed fields for what inference needs, and everything else
    (training epoch and accuracy, recipe, data, test figures, ensemble members, a checkpoint's training state)
    in `details`, kept as written.

    It reads like the JSON object it is stored as (`card["class_names"]`, `card.get("evaluation")`), and is
    validated when it is made: `from_dict` is the one way a stored card is read, `to_dict` the one way it is
    written.

    Attributes:
        class_names: the classes, in the network's output order.
        input_shape: (side, side, 1): what the network takes; smaller than image_size for a model on crops.
        image_size: the side faces are prepared at (48 for FER2013-style models); None means input_shape's.
        model: the architecture's registered name ("ensemble" for a saved ensemble), or None if unknown.
        preprocessing: how inputs are prepared, in words, or None.
        train_sharpness: the training images' mean sharpness, for evaluate's data-shift warning, or None.
        temperature: the calibration temperature fitted on validation images (see emolens.models.calibration),
            by which inference divides the logits; None means not calibrated (1).
        class_scale: factors for some classes' calibrated probabilities before they are renormalised (a prior
            shift, see emolens.models.calibration.apply_class_scale), e.g. {"neutral": 0.6}; None: none.
        details: everything else the card holds.
    """

    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int] = (48, 48, 1)
    image_size: int | None = None
    model: str | None = None
    preprocessing: str | None = None
    train_sharpness: float | None = None
    temperature: float | None = None
    class_scale: Mapping[str, float] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = self.class_names
        if (
            not isinstance(names, (list, tuple))
            or not names
            or not all(isinstance(n, str) and n for n in names)
            or len(set(names)) != len(names)
        ):
            raise ValueError("its card's class_names must be a list of distinct names, one per output")
        shape = self.input_shape
        if (
            not isinstance(shape, (list, tuple))
            or len(shape) != 3
            or [_side(s) for s in shape] != list(shape)
            or shape[0] != shape[1]
            or shape[2] != 1
        ):
            raise ValueError(
                f"its card's input_shape {list(shape) if isinstance(shape, (list, tuple)) else shape!r} is not [side, side, 1]"
            )
        size = shape[0] if self.image_size is None else self.image_size
        object.__setattr__(self, "image_size", size)
        if _side(size) is None or size < shape[0]:
            raise ValueError(f"its card's image_size {self.image_size!r} is not a side of at least {shape[0]} pixels")
        if self.temperature is not None and not (
            isinstance(self.temperature, (int, float))
            and not isinstance(self.temperature, bool)
            and self.temperature > 0
        ):
            raise ValueError(f"its card's temperature {self.temperature!r} is not a positive number")
        scale = self.class_scale
        if scale is not None and not (
            isinstance(scale, Mapping)
            and set(scale) <= set(names)
            and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf") for v in scale.values()
            )
        ):
            raise ValueError(f"its card's class_scale {scale!r} is not a mapping of its classes to positive numbers")
        object.__setattr__(self, "class_names", tuple(names))
        object.__setattr__(self, "input_shape", tuple(shape))
        object.__setattr__(self, "details", dict(self.details))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], path: str | os.PathLike) -> ModelCard:
        """The card stored as `values` in the model file at `path` (for messages).

        Raises:
            EmolensError: it lacks class names, or its fields are malformed.
        """
        typed = {name: values[name] for name in _TYPED if name in values}
        details = {key: value for key, value in values.items() if key not in _TYPED and key != "format"}
        try:
            return cls(**typed, details=details)
        except (TypeError, ValueError) as error:  # TypeError: no class_names at all
            reason = str(error) if isinstance(error, ValueError) else "its card names no class_names"
            raise EmolensError(f"{os.fspath(path)}: {reason}. {_REMEDY}") from error

    def to_dict(self) -> dict[str, Any]:
        """The JSON object stored in model files (fields left unknown are left out)."""
        typed = {
            "format": 1,
            "model": self.model,
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "image_size": self.image_size,
            "preprocessing": self.preprocessing,
            "train_sharpness": self.train_sharpness,
            "temperature": self.temperature,
            "class_scale": dict(self.class_scale) if self.class_scale else None,
        }
        return {key: value for key, value in typed.items() if value is not None} | dict(self.details)

    def with_details(self, **changes: Any) -> ModelCard:
        """A copy with `details` updated; a value of None removes that entry."""
        details = {**self.details, **changes}
        return replace(self, details={key: value for key, value in details.items() if value is not None})

    def check_network(self, path: str | os.PathLike, *, outputs: Any, input_shape: Sequence[Any]) -> ModelCard:
        """This card, if it agrees with the network it describes; else a one-line error that says how not.

        Args:
            path: the model file, for messages.
            outputs: the network's number of outputs (None or a name where the file leaves it open).
            input_shape: the network's input shape, batch first: (N, H, W, 1); sides may be None or names.

        Raises:
            EmolensError: not one class name per output, or an input shape the network does not take.
        """
        where = os.fspath(path)
        if _side(outputs) is not None and len(self.class_names) != outputs:
            raise EmolensError(
                f"{where} has {outputs} outputs but its card names {len(self.class_names)} classes: "
                f"every answer would be mislabelled. {_REMEDY}"
            )
        network = list(input_shape)[-3:]
        # A network taking fewer than three dimensions cannot match [side, side, 1]: say so rather than compare less.
        if len(network) != len(self.input_shape) or any(
            _side(side) is not None and side != expected
            for side, expected in zip(network, self.input_shape, strict=True)
        ):
            shown = [s if _side(s) else None for s in network]
            raise EmolensError(
                f"{where}: its card says input_shape {list(self.input_shape)} but the network takes {shown}. {_REMEDY}"
            )
        return self

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


_TYPED = tuple(f.name for f in fields(ModelCard) if f.name != "details")


def read_card_text(text: str | bytes, path: str | os.PathLike) -> ModelCard:
    """The card stored in the model file at `path` as JSON `text`, validated (see ModelCard.from_dict)."""
    return ModelCard.from_dict(parse_card(text, path), path)


def write_card(path: str | os.PathLike, card: ModelCard) -> None:
    """Replaces the card inside the .keras or .onnx file at `path` with `card`, atomically; the network is
    left byte for byte as it was (a .keras zip is copied member by member, an .onnx file re-serialised)."""
    import zipfile

    from emolens._io import atomic_path

    path = os.fspath(path)
    text = json.dumps(card.to_dict(), indent=2)
    with atomic_path(path) as tmp:
        if path.endswith(".onnx"):
            import onnx  # the protobuf reader, not ONNX Runtime

            proto = onnx.load(path)
            kept = [entry for entry in proto.metadata_props if entry.key != ONNX_CARD_KEY]
            del proto.metadata_props[:]
            proto.metadata_props.extend(kept)
            entry = proto.metadata_props.add()
            entry.key, entry.value = ONNX_CARD_KEY, json.dumps(card.to_dict())
            onnx.save(proto, os.fspath(tmp))
        else:
            with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
                for member in source.infolist():
                    if member.filename != CARD_MEMBER:
                        target.writestr(member, source.read(member))
                target.writestr(CARD_MEMBER, text)
