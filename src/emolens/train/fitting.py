"""Fitting a prepared run: Keras's fit from the epoch its training state has reached to the last, keeping the run
folder after every epoch, then calibrating the best model.

`train` (`train/trainer.py`, a new run) and `resume` (`train/resuming.py`, an interrupted one) prepare the trainer,
its card and its training state and hand them to `fit_run`, which goes on with a recorder that keeps the run folder
(`train/run_folder.py`). With freeze_epochs the run has two phases (`train/finetune.py`): the output layer alone,
then the whole network, each compiled with an optimizer of its own.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from emolens import backend
from emolens.data.dataset import Dataset, Split
from emolens.models.card import ModelCard
from emolens.models.classifier import load_classifier
from emolens.rundir import RunDir
from emolens.train.calibration import fit_calibration, store_calibration
from emolens.train.config import TrainConfig
from emolens.train.data import model_arrays
from emolens.train.distill import StudentAccuracy, ViewDistillationLoss
from emolens.train.finetune import HEAD_RATE_FACTOR, body_is_trainable, set_body_trainable
from emolens.train.mixing import MixedBatches
from emolens.train.optim import PlateauSchedule, base_learning_rate, class_weights, make_optimizer
from emolens.train.run_folder import RunRecorder
from emolens.train.state import RunState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or resumed-and-finished) run produced.

    Examples:
        >>> result = train("fer2013.zip", TrainConfig(model="seed", epochs=50))   # doctest: +SKIP
        >>> result.best_epoch, round(result.best_val_accuracy, 3), result.run_dir   # doctest: +SKIP
        (48, 0.61, PosixPath('runs/seed-20261204-120000'))
    """

    run_dir: Path
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]]


def compile_trainer(trainer: keras.Model, config: TrainConfig, optimizer: keras.optimizers.Optimizer) -> None:
    """Compiles `trainer` to minimise the run's loss (cross-entropy, with config's label smoothing) with `optimizer`;
    with a teacher inside the trainer, against the target mixed with the teacher's answer for each view."""
    if config.view_teacher:
        loss: keras.losses.Loss = ViewDistillationLoss(config.teacher_weight, config.label_smoothing)
        metrics: list[Any] = [StudentAccuracy(name="accuracy")]  # named so, the history's columns stay the same
    else:
        loss, metrics = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing), ["accuracy"]
    trainer.compile(optimizer=optimizer, loss=loss, metrics=metrics)


def _log_start(dataset: Dataset, train: Split, val: Split, run_dir: Path) -> None:
    env = backend.summary()
    logger.info(
        "Keras %s on %s; devices: %s; %d CPU threads",
        keras.__version__,
        env["backend"],
        ", ".join(env["devices"]),
        env["threads"],
    )
    test_size = len(dataset.splits["test"]) if "test" in dataset.splits else 0
    logger.info(
        "Data %s: %d train, %d validation, %d test images, %d classes",
        dataset.source,
        len(train),
        len(val),
        test_size,
        len(dataset.class_names),
    )
    if dataset.skipped:
        logger.warning(
            "Left out %d files, unreadable or not labelled (listed with why in %s)",
            len(dataset.skipped),
            RunDir(run_dir).skipped,
        )
    logger.info("Writing the run to %s", run_dir)


def _calibrate_best(run_dir: Path, val: Split) -> None:
    """Fits model.keras's temperature on the validation split, so its confidence can be read as a probability."""
    best = load_classifier(RunDir(run_dir).model)
    calibration = fit_calibration(best, val.images, val.labels, val.votes)
    store_calibration(best, calibration)
    logger.info(
        "Calibrated the best model on %d validation images: temperature %.2f, %s",
        calibration.images,
        calibration.temperature,
        calibration.error_change(),
    )


def _callbacks(
    run_dir: Path, trainer: keras.Model, card: ModelCard, state: RunState, config: TrainConfig
) -> list[keras.callbacks.Callback]:
    """The plateau schedule if the config asks for it, then the recorder that keeps the run folder: in that order,
    so the state the recorder saves already holds this epoch's plateau counters."""
    callbacks: list[keras.callbacks.Callback] = [PlateauSchedule(state)] if config.schedule == "plateau" else []
    callbacks.append(RunRecorder(run_dir, trainer.get_layer(config.model), card, state))
    return callbacks


def _training_data(
    x_train: np.ndarray, y_train: np.ndarray, weights: dict[int, float] | None, config: TrainConfig, epoch: int
) -> dict[str, Any]:
    """fit's arguments for the training data: the arrays, shuffled, with their class weights; or with MixUp or
    CutMix, mixed batches from `epoch` on."""
    if not (config.mixup or config.cutmix):
        return {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True, "class_weight": weights}
    # Mixed labels need mixed class weights, so those travel inside the batches as sample weights.
    batches = MixedBatches(
        x_train,
        y_train,
        batch_size=config.batch_size,
        mixup=config.mixup,
        cutmix=config.cutmix,
        class_weights=weights,
        seed=config.seed,
        epoch=epoch,
    )
    return {"x": batches}


def _phases(config: TrainConfig, epochs_done: int) -> list[tuple[int, bool]]:
    """The fit calls left, as (the epoch each ends at, whether the body trains): while freeze_epochs are not
    done, the output layer trains alone first."""
    if epochs_done < config.freeze_epochs:
        return [(config.freeze_epochs, False), (config.epochs, True)]
    return [(config.epochs, True)]


def _enter_phase(trainer: keras.Model, config: TrainConfig, body_trains: bool, steps_per_epoch: int) -> None:
    """Freezes or thaws the classifier's body. Changing what trains needs a new compile, and so a new optimizer:
    the head's own (a constant, larger rate) while frozen, then the schedule planned for the epochs left."""
    set_body_trainable(trainer.get_layer(config.model), body_trains)
    if body_trains:
        rest = replace(
            config,
            epochs=config.epochs - config.freeze_epochs,
            freeze_epochs=0,
            warmup_epochs=min(config.warmup_epochs, config.epochs - config.freeze_epochs - 1),
        )
        optimizer = make_optimizer(rest, steps_per_epoch)
    else:
        optimizer = keras.optimizers.Adam(HEAD_RATE_FACTOR * base_learning_rate(config))
    compile_trainer(trainer, config, optimizer)


def fit_run(
    run_dir: Path,
    trainer: keras.Model,
    card: ModelCard,
    state: RunState,
    config: TrainConfig,
    dataset: Dataset,
    splits: tuple[Split, Split],
    verbose: int,
) -> TrainResult:
    """Trains `trainer` (`build_trainer`'s, or a run's checkpoint) on `splits` (train, validation) from the epoch
    `state` has reached to config.epochs, keeping `run_dir` after every epoch, then calibrates the best model.

    `state` is the run's training state (epochs done, the best epoch, the history), updated as epochs end.
    """
    train, val = splits
    _log_start(dataset, train, val, run_dir)
    num_classes = len(dataset.class_names)
    x_train, y_train = model_arrays(train, dataset.class_names, config, RunDir(run_dir).teacher_answers)
    # Checkpoints are chosen against the validation votes (or labels) alone, what evaluate will score.
    x_val, y_val = model_arrays(val, dataset.class_names, replace(config, source_label_weight=0.0, teacher=None))
    # Reseeding with the epoch keeps a resumed run deterministic without replaying the random stream.
    keras.utils.set_random_seed(config.seed + state.epochs_done)
    callbacks = _callbacks(run_dir, trainer, card, state, config)
    weights = class_weights(train.labels, num_classes, config.class_weight)
    data = _training_data(x_train, y_train, weights, config, state.epochs_done)
    steps = math.ceil(len(x_train) / config.batch_size)
    classifier = trainer.get_layer(config.model)
    for until, body_trains in _phases(config, state.epochs_done):
        # A resumed run reloads its phase, frozen or not, with the checkpoint.
        if config.freeze_epochs and body_is_trainable(classifier) != body_trains:
            _enter_phase(trainer, config, body_trains, steps)
        trainer.fit(
            **data,
            epochs=until,
            initial_epoch=state.epochs_done,
            validation_data=(x_val, y_val),
            callbacks=callbacks,
            verbose=verbose,
        )
    _calibrate_best(run_dir, val)
    return TrainResult(run_dir, state.best_epoch, state.best_val_accuracy, state.history)
