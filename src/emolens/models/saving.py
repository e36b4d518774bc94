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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from emolens._io import atomic_path
from emolens.constants import FER2013_CLASSES
from emolens.errors import EmolensError
from emolens.models.card import CARD_MEMBER, ModelCard, read_card_text

logger = logging.getLogger(__name__)

# A card is a few kilobytes (a long run's history included): a larger member is not one emolens wrote, and is
# not read into memory.
MAX_CARD_BYTES = 4 * 1024 * 1024
# The widest layer a facial-emotion model could want; Keras would allocate whatever a file's config asks for
# (a Dense of 10^11 units is 400 GB) before anything else could refuse it.
MAX_LAYER_WIDTH = 65_536
_WIDTH_KEYS = ("units", "filters", "output_dim", "input_dim", "kernel_size", "pool_size", "depth_multiplier")


def save_model(model: keras.Model, path: str | os.PathLike, card: ModelCard | Mapping[str, Any]) -> Path:
    """Saves `model` with `card` inside it, atomically. Returns the path."""
    path = Path(path)
    card = card if isinstance(card, ModelCard) else ModelCard.from_dict(card, path)
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(CARD_MEMBER, json.dumps(card.to_dict(), indent=2))
    return path


def read_card(path: str | os.PathLike) -> ModelCard | None:
    """The emolens card inside a .keras file, or None for a .keras file emolens did not write."""
    try:
        with zipfile.ZipFile(path) as archive:
            if CARD_MEMBER not in archive.namelist():
                return None
            size = archive.getinfo(CARD_MEMBER).file_size  # reading stops there, whatever the data holds
            if size > MAX_CARD_BYTES:
                raise EmolensError(
                    f"{path} holds a {size:,}-byte {CARD_MEMBER}, above {MAX_CARD_BYTES:,}: it is not a model emolens wrote."
                )
            text = archive.read(CARD_MEMBER)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise EmolensError(f"{path} is not a readable .keras model ({error}).") from error
    return read_card_text(text, path)


def _check_layer_widths(path: Path) -> None:
    """Refuses a .keras file whose architecture asks for a layer wider than MAX_LAYER_WIDTH, before Keras
    allocates it."""
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo("config.json").file_size > MAX_CARD_BYTES:
                raise EmolensError(
                    f"{path} holds an architecture description above {MAX_CARD_BYTES:,} bytes: it is not an emolens model."
                )
            architecture = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as error:
        raise EmolensError(f"{path} is not a readable .keras model ({error}).") from error
    pending = [architecture]
    while pending:
        node = pending.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            sizes = value if isinstance(value, list) else [value]
            if key in _WIDTH_KEYS and any(isinstance(n, int) and n > MAX_LAYER_WIDTH for n in sizes):
                raise EmolensError(
                    f"{path} asks for a layer with {key}={value}, above {MAX_LAYER_WIDTH:,}: it is not a model emolens can load."
                )
            pending.append(value)


def _load(
    path: Path, compile: bool, custom_objects: dict[str, Any] | None = None
) -> tuple[keras.Model, ModelCard | None]:
    if not path.is_file():
        raise EmolensError(f"no model file at {path}. Pass a run folder or a .keras file.")
    card = read_card(path)  # first: it says plainly when the file is not a .keras zip at all
    _check_layer_widths(path)
    try:
        return keras.models.load_model(path, compile=compile, custom_objects=custom_objects), card
    except (ValueError, OSError, TypeError, KeyError, RuntimeError, MemoryError) as error:
        raise EmolensError(f"could not load the model {path}: {error}") from error


def load_checkpoint(path: str | os.PathLike) -> tuple[keras.Model, ModelCard]:
    """Loads a run's last.keras, compiled, with its card: the whole trainer (augmentation and random crop in
    front of the classifier), so its input is the full image while the card describes the classifier inside."""
    # What only trainers hold: the augmenter's layer, and a teacher answering each view with its loss and metric.
    from emolens.data.affine import RandomAffine
    from emolens.train.distill import StudentAccuracy, TeacherAnswers, ViewDistillationLoss

    layers = (RandomAffine, TeacherAnswers, ViewDistillationLoss, StudentAccuracy)
    trainer, card = _load(
        Path(path), compile=True, custom_objects={f"emolens>{kind.__name__}": kind for kind in layers}
    )
    if card is None:
        raise EmolensError(f"{path} has no emolens card: it is not a checkpoint emolens wrote.")
    return trainer, card


def load_model(path: str | os.PathLike, *, compile: bool = True) -> tuple[keras.Model, ModelCard]:
    """Loads a .keras classifier and its card, checked against the network (see emolens.models.card).

    Args:
        path: str or path. A .keras file.
        compile: bool. Restore the optimizer and loss too. Defaults to True.

    Returns:
        (model, card). A foreign 7-class model without a card gets FER2013's class names.
    """
    path = Path(path)
    model, card = _load(path, compile)
    if card is None:
        outputs = int(model.output_shape[-1])
        if outputs != len(FER2013_CLASSES):
            raise EmolensError(f"{path} has {outputs} outputs and no emolens card naming its classes.")
        logger.warning("%s has no emolens card; assuming FER2013's class order %s.", path, ", ".join(FER2013_CLASSES))
        card = ModelCard.from_dict(
            {"class_names": list(FER2013_CLASSES), "input_shape": list(model.input_shape[1:])}, path
        )
    return model, card.check_network(path, outputs=model.output_shape[-1], input_shape=model.input_shape)
