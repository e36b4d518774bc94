"""Fine-tuning: a run that starts from a trained model (`emolens train DATA --from MODEL`).

The start model gives the run its architecture, input crop and weights; its classes must be the data's
(matched by name, in any order; the data may lack some) unless a new output layer is asked for. With freeze_epochs, the body is frozen
and the output layer trains alone first (see `emolens.train.fitting.fit_run`, which runs the two phases).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import keras

from emolens.data.dataset import Dataset
from emolens.errors import EmolensError
from emolens.models import get_model_spec
from emolens.models.card import ModelCard
from emolens.models.classifier import keras_model_path

logger = logging.getLogger(__name__)

# While the body is frozen only the new or reused output layer learns, so it can take a larger step.
HEAD_RATE_FACTOR = 10.0


class StartModel(NamedTuple):
    """The trained classifier a fine-tuning run starts from, and its card."""

    network: keras.Model
    card: ModelCard


def load_start_model(start_from: str) -> StartModel:
    """The trained classifier a fine-tuning run starts from ("default", a run folder or a .keras file) and its card."""
    from emolens.models.saving import load_model

    path = keras_model_path(start_from)
    network, card = load_model(path, compile=False)
    start_architecture(card, start_from)
    return StartModel(network, card)


def start_architecture(card: ModelCard, start_from: str) -> str:
    """The architecture a run that starts from the model `card` describes trains: the model's own, if it names
    one that this version of emolens can build; an error otherwise."""
    if card.model is None or card.model == "ensemble":
        raise EmolensError(
            f"{start_from}: cannot fine-tune "
            f"{'an ensemble' if card.model else 'a model whose card names no architecture'}; start from one of its members."
        )
    get_model_spec(card.model)  # an architecture this version of emolens can build
    return card.model


def start_classes(dataset: Dataset, card: ModelCard, new_head: bool) -> Dataset:
    """The data in the start model's classes: a fine-tuned model keeps its classes, so DATA may lack some of them
    (the model still knows them, from its own training: said in the log) but may not add any, unless a new
    output layer is asked for."""
    if new_head:
        return dataset
    missing_in_model = sorted(set(dataset.class_names) - set(card.class_names))
    if missing_in_model:
        raise EmolensError(
            f"the classes differ: the model lacks {', '.join(missing_in_model)}. Give the data only the model's classes "
            f"({', '.join(card.class_names)}), or ask for a new output layer (new_head; --new-head on the command line)."
        )
    missing_in_data = [name for name in card.class_names if name not in dataset.class_names]
    if missing_in_data:
        logger.warning(
            "%s has no %s: the model keeps %s as it learned %s, and fine-tuning teaches it only the other classes.",
            dataset.source,
            ", ".join(missing_in_data),
            "them" if len(missing_in_data) > 1 else "it",
            "them" if len(missing_in_data) > 1 else "it",
        )
    return dataset.with_classes(tuple(card.class_names))


def transfer_weights(
    classifier: keras.Model,
    source: keras.Model,
    source_classes: tuple[str, ...],
    class_names: tuple[str, ...],
    new_head: bool,
) -> None:
    """Copies `source`'s weights into `classifier` (the same architecture, built for `class_names`): every layer,
    and the output layer too unless `new_head`, its columns reordered to the data's class order."""
    if len(classifier.layers) != len(source.layers) or any(
        type(a) is not type(b) for a, b in zip(classifier.layers, source.layers, strict=True)
    ):
        raise EmolensError(
            "the model to start from does not match its architecture as this version of emolens builds it."
        )
    pairs = [(mine, theirs) for mine, theirs in zip(classifier.layers, source.layers, strict=True) if theirs.weights]
    *body, (head, source_head) = pairs
    for mine, theirs in body:
        mine.set_weights(theirs.get_weights())
    if not new_head:
        order = [source_classes.index(name) for name in class_names]
        kernel, bias = source_head.get_weights()
        head.set_weights([kernel[:, order], bias[order]])


def body_is_trainable(classifier: keras.Model) -> bool:
    return next(layer for layer in classifier.layers[:-1] if layer.weights).trainable


def set_body_trainable(classifier: keras.Model, trainable: bool) -> None:
    """Freezes (or thaws) every layer but the output layer. Frozen BatchNorm layers also keep their statistics."""
    for layer in classifier.layers[:-1]:
        layer.trainable = trainable
