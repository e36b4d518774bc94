"""The emolens model card, read from a model file and checked against the network it describes.

The card travels inside the model file (`emolens.json` in a .keras zip, the `emolens` metadata property of an
.onnx file) and says what inference needs: the class names, in output order, and the input size. A card that
disagrees with its network would mislabel every answer, so it is checked once, where a model is loaded. This
module imports neither Keras nor ONNX Runtime: both loaders use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
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


def check_card(card: dict[str, Any], path: str | os.PathLike, *, outputs: Any, input_shape: Sequence[Any]) -> dict[str, Any]:
    """`card`, if it agrees with the network it describes; else a one-line error that says how they disagree.

    Args:
        card: the parsed card.
        path: the model file, for messages.
        outputs: the network's number of outputs (None or a name where the file leaves it open).
        input_shape: the network's input shape, batch first: (N, H, W, 1); sides may be None or names.

    Raises:
        EmolensError: class names that are not distinct non-empty strings, or not one per output; an input
            shape that is not (side, side, 1) or differs from the network's; an image size below the input side.
    """
    where = os.fspath(path)
    names = card.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise EmolensError(f"{where}: its card's class_names must be a list of distinct names, one per output. {_REMEDY}")
    if _side(outputs) is not None and len(names) != outputs:
        raise EmolensError(f"{where} has {outputs} outputs but its card names {len(names)} classes: every answer would be mislabelled. {_REMEDY}")
    shape = card.get("input_shape", [48, 48, 1])
    if not isinstance(shape, list) or len(shape) != 3 or [_side(s) for s in shape] != shape or shape[0] != shape[1] or shape[2] != 1:
        raise EmolensError(f"{where}: its card's input_shape {shape!r} is not [side, side, 1]. {_REMEDY}")
    network = list(input_shape)[-3:]
    if any(_side(side) is not None and side != expected for side, expected in zip(network, shape)):
        raise EmolensError(f"{where}: its card says input_shape {shape} but the network takes {[s if _side(s) else None for s in network]}. {_REMEDY}")
    image_size = card.get("image_size", shape[0])
    if _side(image_size) is None or image_size < shape[0]:
        raise EmolensError(f"{where}: its card's image_size {image_size!r} is not a side of at least {shape[0]} pixels. {_REMEDY}")
    return card
