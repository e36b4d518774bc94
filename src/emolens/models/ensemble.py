"""One model that averages several: `emolens ensemble RUN... --out FILE`.

The result is an ordinary .keras file (with a card naming its members), so predict, evaluate and export take
it like any other model, and its ONNX export runs the whole ensemble in one session.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import keras

from emolens.data.preprocess import PREPROCESSING
from emolens.errors import EmolensError
from emolens.models.card import ModelCard
from emolens.models.classifier import ensemble_sharpness, resolve_model_path
from emolens.models.saving import load_model, save_model


def build_ensemble(models: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Saves a .keras model averaging the probabilities of `models` (run folders or .keras files).

    All members must have the same classes, in the same order, and the same input size.

    Returns:
        The path written.
    """
    if len(models) < 2:
        raise EmolensError("an ensemble needs at least two models.")
    out = Path(out)
    if out.suffix != ".keras":
        raise EmolensError(f"the ensemble is a .keras file: name it e.g. ensemble.keras, not {out.name}.")
    members = []
    for model in models:
        path = resolve_model_path(model)
        if path.suffix != ".keras":
            raise EmolensError(
                f"{model}: ensemble members must be run folders or .keras files (an .onnx file cannot be combined)."
            )
        members.append((path, *load_model(path, compile=False)))
    first_path, first_model, first_card = members[0]
    for path, model, card in members[1:]:
        if card.class_names != first_card.class_names or model.input_shape != first_model.input_shape:
            raise EmolensError(
                f"{path} and {first_path} cannot be ensembled: their classes (or their order) or input sizes differ."
            )
    inputs = keras.Input(first_model.input_shape[1:])
    # Each member goes in its own wrapper: members are often the same architecture, with the same layer name.
    outputs = keras.layers.Average()(
        [keras.Sequential([model], name=f"member_{i}")(inputs) for i, (_, model, _) in enumerate(members)]
    )
    ensemble = keras.Model(inputs, outputs, name="ensemble")
    card = ModelCard(
        model="ensemble",
        class_names=first_card.class_names,
        input_shape=tuple(first_model.input_shape[1:]),
        image_size=first_card.image_size,
        preprocessing=PREPROCESSING,
        train_sharpness=ensemble_sharpness([card for _, _, card in members]),
        details={
            "members": [
                {"path": str(path), "model": card.model, "val_accuracy": card.get("val_accuracy")}
                for path, _, card in members
            ]
        },
    )
    return save_model(ensemble, out, card)
