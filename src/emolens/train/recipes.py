"""Named training recipes: plain dicts of TrainConfig settings that a user can read, copy and override.

`emolens recipes` prints them; `emolens train DATA --recipe cpu --epochs 20` starts from one and overrides any
setting flag by flag. A recipe never hides code: every entry is a TrainConfig field.
"""

from __future__ import annotations

import copy
import difflib
import logging
from typing import Any

from emolens.errors import EmolensError
from emolens.train.config import TrainConfig

logger = logging.getLogger(__name__)

# For 2 CPU cores in about an hour: the compact residual net on 44-pixel random crops (a mean 62 s an epoch
# here), AdamW with warm-up and cosine decay, label smoothing, and a gentle weight for the rare classes
# (disgust). It trained the FER2013-label model bundled before FER+: 62.5% on PublicTest, 64.6% with ten-crop
# TTA. The ferplus and quick recipes below start from it.
_CPU: dict[str, Any] = {
    "model": "mini_resnet",
    "epochs": 50,
    "batch_size": 64,
    "learning_rate": 2e-3,
    "optimizer": "adam",
    "weight_decay": 1e-4,
    "schedule": "cosine",
    "warmup_epochs": 3,
    "label_smoothing": 0.1,
    "class_weight": "sqrt",
    "crop": 44,
    "augment": {"rotation": 10.0, "shift": 0.1, "flip": True, "zoom": 0.1},
}

RECIPES: dict[str, dict[str, Any]] = {
    # The popular FER2013 notebook, setting for setting: Adam 1e-4 with decay=1e-6, 50 epochs, batch 64.
    "seed": {
        "model": "seed",
        "epochs": 50,
        "batch_size": 64,
        "learning_rate": 1e-4,
        "optimizer": "adam",
        "schedule": "inverse_time",
        "augment": {"rotation": 10.0, "shift": 0.1, "flip": True, "zoom": 0.0},
    },
    "cpu": _CPU,
    # FER+'s crowd votes (--labels fer2013-ferplus.csv): the cpu recipe's net and schedule for 60 epochs, learning
    # the vote distribution mixed with a quarter of the folder's FER2013 label, which keeps subtle faces from all
    # turning neutral (FER+'s annotators chose neutral for 37% of faces). No label smoothing: votes are soft already.
    "ferplus": {**_CPU, "epochs": 60, "label_smoothing": 0.0, "target": "votes", "source_label_weight": 0.25},
    # A first look at FER2013 in a few minutes on 2 cores: the cpu recipe on at most 1,000 training images per
    # class, for 6 epochs with one of warm-up. It shows the model learning; it is not one to keep.
    "quick": {**_CPU, "epochs": 6, "limit": 1000, "warmup_epochs": 1},
    # Fine-tuning a trained model (the bundled one unless --from says otherwise) on a few hundred of your own
    # faces: the output layer alone for 3 epochs, then everything at a rate well below training's, for 20 epochs
    # in all. The architecture and crop are the start model's.
    "finetune": {
        "start_from": "default",
        "freeze_epochs": 3,
        "epochs": 20,
        "batch_size": 32,
        "learning_rate": 1e-4,
        "optimizer": "adam",
        "weight_decay": 1e-4,
        "schedule": "cosine",
        "warmup_epochs": 0,
        "label_smoothing": 0.1,
        "class_weight": "sqrt",
        "augment": {"rotation": 10.0, "shift": 0.1, "flip": True, "zoom": 0.1},
    },
    # For a GPU: the BatchNorm VGG-style net with SGD-Nesterov, a plateau schedule, 40-pixel random crops and
    # random erasing, as in the best published single model (Khaireddin and Chen, 2021, with ten-crop TTA).
    "best": {
        "model": "vgg",
        "epochs": 300,
        "batch_size": 64,
        "learning_rate": 0.01,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "schedule": "plateau",
        "label_smoothing": 0.0,
        "class_weight": "none",
        "crop": 40,
        "augment": {"rotation": 10.0, "shift": 0.2, "flip": True, "zoom": 0.2, "erasing": 0.5},
    },
}


def recipe_settings(name: str) -> dict[str, Any]:
    """A copy of recipe `name`'s settings; an unknown name suggests close ones."""
    if name not in RECIPES:
        close = difflib.get_close_matches(name, RECIPES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise EmolensError(f"unknown recipe '{name}'.{hint} Recipes: {', '.join(RECIPES)}.")
    return copy.deepcopy(RECIPES[name])


def recipe_config(name: str, **overrides: Any) -> TrainConfig:
    """TrainConfig from recipe `name` with `overrides` (None values ignored; `augment` merged key by key)."""
    settings = recipe_settings(name)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "augment":
            settings["augment"] = {**settings.get("augment", {}), **value}
        else:
            settings[key] = value
    # A shorter run than the recipe's (--epochs 2 for a quick try) keeps the recipe's warm-up or frozen epochs
    # only if they fit; the ones the user set themselves are checked as given.
    for phase in ("warmup_epochs", "freeze_epochs"):
        if overrides.get(phase) is None and settings.get(phase, 0) >= settings["epochs"]:
            logger.warning(
                "The %s recipe's %s (%d) do not fit in %d epochs: using %d.",
                name,
                phase.replace("_", " "),
                settings[phase],
                settings["epochs"],
                settings["epochs"] - 1,
            )
            settings[phase] = settings["epochs"] - 1
    return TrainConfig.from_dict(settings)
