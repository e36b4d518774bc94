"""Saving and loading .keras files that carry emolens's model card inside them.

A .keras file is a ZIP; emolens adds one member, `emolens.json`, with what inference needs (class names,
input size, preprocessing) and, for resumable checkpoints, the training state. Keras ignores the extra
member, so the files still load with plain `keras.models.load_model`. Writes are atomic.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import keras

from emolens._io import atomic_path
from emolens.constants import FER2013_CLASSES
from emolens.errors import EmolensError
from emolens.models.card import CARD_MEMBER, check_card, parse_card

logger = logging.getLogger(__name__)


def save_model(model: keras.Model, path: str | os.PathLike, card: dict[str, Any]) -> Path:
    """Saves `model` with `card` (JSON-serialisable) inside it, atomically. Returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(CARD_MEMBER, json.dumps(card, indent=2))
    return path


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The emolens card inside a .keras file, or {} for a .keras file emolens did not write."""
    try:
        with zipfile.ZipFile(path) as archive:
            if CARD_MEMBER not in archive.namelist():
                return {}
            text = archive.read(CARD_MEMBER)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise EmolensError(f"{path} is not a readable .keras model ({error}).") from error
    return parse_card(text, path)


def _load(path: Path, compile: bool) -> tuple[keras.Model, dict[str, Any]]:
    if not path.is_file():
        raise EmolensError(f"no model file at {path}. Pass a run folder or a .keras file.")
    card = read_card(path)  # first: it says plainly when the file is not a .keras zip at all
    try:
        return keras.models.load_model(path, compile=compile), card
    except (ValueError, OSError, TypeError, KeyError) as error:
        raise EmolensError(f"could not load the model {path}: {error}") from error


def load_checkpoint(path: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """Loads a run's last.keras, compiled, with its card: the whole trainer (augmentation and random crop in
    front of the classifier), so its input is the full image while the card describes the classifier inside."""
    return _load(Path(path), compile=True)


def load_model(path: str | os.PathLike, *, compile: bool = True) -> tuple[keras.Model, dict[str, Any]]:
    """Loads a .keras classifier and its card, checked against the network (see emolens.models.card).

    Args:
        path: str or path. A .keras file.
        compile: bool. Restore the optimizer and loss too. Defaults to True.

    Returns:
        (model, card). A card always has "class_names"; for a foreign 7-class model they are FER2013's.
    """
    path = Path(path)
    model, card = _load(path, compile)
    if "class_names" not in card:
        outputs = int(model.output_shape[-1])
        if outputs != len(FER2013_CLASSES):
            raise EmolensError(f"{path} has {outputs} outputs and no emolens card naming its classes.")
        logger.warning("%s has no emolens card; assuming FER2013's class order %s.", path, ", ".join(FER2013_CLASSES))
        card = {**card, "class_names": list(FER2013_CLASSES)}
    return model, check_card(card, path, outputs=model.output_shape[-1], input_shape=model.input_shape)
