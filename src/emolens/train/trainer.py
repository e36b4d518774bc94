"""Training a model on a dataset into a run folder, and resuming an interrupted run.

`train` prepares the data (`train/data.py`) and the model (`build_trainer`, optionally from a start model:
`train/finetune.py`), then `_fit` runs Keras's fit with a recorder that keeps the run folder
(`train/run_folder.py`) after every epoch, and calibrates the best model at the end. `resume` rebuilds the same
state from the folder's checkpoint and goes on.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras

from emolens import backend
from emolens._io import write_json
from emolens.constants import IMAGE_SIZE
from emolens.data.augment import build_augmenter
from emolens.data.cache import load_dataset
from emolens.data.dataset import Dataset, Split
from emolens.data.sources import refuse_output_inside
from emolens.errors import EmolensError
from emolens.rundir import RunDir
from emolens.models.card import ModelCard
from emolens.models.classifier import load_classifier
from emolens.models.registry import build_model, get_model_spec
from emolens.models.saving import load_checkpoint, read_card
from emolens.train.calibration import fit_calibration, store_calibration
from emolens.train.config import TrainConfig
from emolens.train.data import check_trainable_classes, model_arrays, prepare_splits
from emolens.train.finetune import (
    HEAD_RATE_FACTOR,
    body_is_trainable,
    load_start_model,
    set_body_trainable,
    start_classes,
    transfer_weights,
)
from emolens.train.optim import PlateauSchedule, class_weights, make_optimizer, resolve_precision
from emolens.train.mixing import MixedBatches
from emolens.train.run_folder import RunRecorder, new_run_dir, write_run_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or resumed-and-finished) run produced.

    Example:
        >>> result = train("fer2013.zip", TrainConfig(model="seed", epochs=50))   # doctest: +SKIP
        >>> result.best_epoch, round(result.best_val_accuracy, 3), result.run_dir   # doctest: +SKIP
        (48, 0.61, PosixPath('runs/seed-20261204-120000'))
    """

    run_dir: Path
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]]


def data_parallel_devices(devices: int | str | None, config: TrainConfig) -> int:
    """The device count for `devices` (see `emolens.backend.resolve_devices`), checked against the batch.

    `config.batch_size` stays the global batch: each of N devices takes batch_size / N images a step, so a run
    on N devices follows the same optimisation as on one, at the same learning rate. (Raising the batch with
    the devices calls for raising the rate in proportion, the linear scaling rule; emolens leaves that to you.)
    """
    count = backend.resolve_devices(devices)
    if config.batch_size % count:
        raise EmolensError(
            f"batch_size {config.batch_size} does not split evenly over {count} devices: use a multiple of {count}."
        )
    return count


def build_trainer(config: TrainConfig, *, num_classes: int, steps_per_epoch: int = 1) -> keras.Model:
    """The compiled model that fit trains: augmentation in front of the classifier (named config.model).

    Keeping augmentation outside the classifier means model.keras holds only what inference runs.
    """
    # Layers take the dtype policy in force when they are built; the policy is global, so it is restored at once.
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if resolve_precision(config) == "bf16" else "float32")
    # A random crop is a random shift of up to the margin (part of the augmenter's one warp), then the centre
    # crop that inference uses: so validation sees exactly the centre crops that evaluate and predict will
    # (Keras's RandomCrop does not crop at all outside training).
    margin = (IMAGE_SIZE - config.crop) / 2 / IMAGE_SIZE
    try:
        classifier = build_model(config.model, input_shape=(config.crop, config.crop, 1), num_classes=num_classes)
        augmenter = build_augmenter(config.augment, seed=config.seed, crop_shift=margin)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    # An empty Sequential cannot be built, so with every transform off there is no augmentation stage at all.
    stages = [augmenter] if augmenter.layers else []
    if config.crop < IMAGE_SIZE:
        stages.append(keras.layers.CenterCrop(config.crop, config.crop))
    trainer = keras.Sequential([keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1)), *stages, classifier], name="trainer")
    backend.allow_xla(trainer)  # before compile, which decides whether XLA compiles the step
    _compile(trainer, config, make_optimizer(config, steps_per_epoch))
    return trainer


def _compile(trainer: keras.Model, config: TrainConfig, optimizer: keras.optimizers.Optimizer) -> None:
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    trainer.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


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
        "Calibrated the best model on %d validation images: temperature %.2f, calibration error (ECE) %.3f -> %.3f",
        calibration.images,
        calibration.temperature,
        calibration.ece_before,
        calibration.ece_after,
    )


def _fit(
    run_dir: Path,
    trainer: keras.Model,
    card: ModelCard,
    state: dict[str, Any],
    config: TrainConfig,
    dataset: Dataset,
    splits: tuple[Split, Split],
    verbose: int,
) -> TrainResult:
    train, val = splits
    _log_start(dataset, train, val, run_dir)
    num_classes = len(dataset.class_names)
    x_train, y_train = model_arrays(train, num_classes, config)
    # Checkpoints are chosen against the validation votes (or labels) alone, what evaluate will score.
    x_val, y_val = model_arrays(val, num_classes, replace(config, source_label_weight=0.0))
    # Reseeding with the epoch keeps a resumed run deterministic without replaying the random stream.
    keras.utils.set_random_seed(config.seed + state["epochs_done"])
    # The plateau schedule runs first, so the state the recorder saves already holds this epoch's counters.
    callbacks = [PlateauSchedule(state)] if config.schedule == "plateau" else []
    callbacks.append(RunRecorder(run_dir, trainer.get_layer(config.model), card, state))
    weights = class_weights(train.labels, num_classes, config.class_weight)
    if config.mixup or config.cutmix:
        # Mixed labels need mixed class weights, so those travel inside the batches as sample weights.
        batches = MixedBatches(
            x_train,
            y_train,
            batch_size=config.batch_size,
            mixup=config.mixup,
            cutmix=config.cutmix,
            class_weights=weights,
            seed=config.seed,
            epoch=state["epochs_done"],
        )
        data = {"x": batches}
    else:
        data = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True, "class_weight": weights}
    steps = math.ceil(len(x_train) / config.batch_size)
    phases = (
        [(config.freeze_epochs, False), (config.epochs, True)]
        if state["epochs_done"] < config.freeze_epochs
        else [(config.epochs, True)]
    )
    classifier = trainer.get_layer(config.model)
    for until, body_trains in phases:
        if config.freeze_epochs and body_is_trainable(classifier) != body_trains:
            # Changing what trains needs a new compile, and so a new optimizer: the head's own (a constant, larger
            # rate) while frozen, then the schedule planned for the epochs left. A resumed run reloads its phase.
            set_body_trainable(classifier, body_trains)
            rest = replace(
                config,
                epochs=config.epochs - config.freeze_epochs,
                freeze_epochs=0,
                warmup_epochs=min(config.warmup_epochs, config.epochs - config.freeze_epochs - 1),
            )
            head = keras.optimizers.Adam(HEAD_RATE_FACTOR * config.learning_rate) if not body_trains else None
            _compile(trainer, config, head or make_optimizer(rest, steps))
        trainer.fit(
            **data,
            epochs=until,
            initial_epoch=state["epochs_done"],
            validation_data=(x_val, y_val),
            callbacks=callbacks,
            verbose=verbose,
        )
    _calibrate_best(run_dir, val)
    return TrainResult(run_dir, state["best_epoch"], state["best_val_accuracy"], state["history"])


def train(
    data: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    cache: bool = True,
    verbose: int = 2,
    devices: int | str | None = None,
    labels: str | os.PathLike | None = None,
) -> TrainResult:
    """Trains a registered model on a FER2013-style source and writes a run folder.

    Args:
        data: str or path. A folder, .zip or FER2013 .csv (see `emolens.data.load_dataset`).
        config: TrainConfig. What to train and how. Defaults to TrainConfig() (the seed model, 50 epochs).
        out: str or path. The run folder. Defaults to runs/<model>-<timestamp>.
        cache: bool. Use the decoded-dataset cache. Defaults to True.
        verbose: int. Keras's fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch. Defaults to 2.
        devices: int, "all" or None. Train data-parallel on this many devices (JAX backend only; see
            `data_parallel_devices`). Defaults to None: one device.
        labels: str or path or None. A labels file that replaces the folders' labels: one class, or votes per
            class, for each image (see `emolens.data.labels`; FER+'s votes are one). Defaults to None.

    Returns:
        A TrainResult naming the run folder and the best validation epoch.

    Example:
        >>> result = train("fer2013.zip", TrainConfig(model="seed", epochs=50))  # doctest: +SKIP
        >>> result.run_dir / "model.keras"  # doctest: +SKIP
    """
    config = config or TrainConfig()
    start = load_start_model(config.start_from) if config.start_from else None
    if start is not None:
        # A fine-tuned model keeps its architecture and input crop.
        config = replace(config, model=start[1].model, crop=start[1].input_shape[0])
    # Resolving the model's learning rate first also rejects an unknown model before any data is read.
    config = replace(
        config,
        learning_rate=config.learning_rate or get_model_spec(config.model).learning_rate,
        precision=resolve_precision(config),
    )
    count = data_parallel_devices(devices, config)
    if out is not None:
        refuse_output_inside(out, data)
    dataset = load_dataset(data, cache=cache, labels=labels)
    check_trainable_classes(dataset)
    if start is not None:
        dataset = start_classes(dataset, start[1], config.new_head)
    train_split, val_split, removed = prepare_splits(dataset, config, count)
    run_dir = new_run_dir(config.model, out)
    keras.utils.set_random_seed(config.seed)
    with backend.data_parallel(count):
        trainer = build_trainer(
            config,
            num_classes=len(dataset.class_names),
            steps_per_epoch=math.ceil(len(train_split) / config.batch_size),
        )
    classifier = trainer.get_layer(config.model)
    if start is not None:
        transfer_weights(classifier, start[0], start[1].class_names, dataset.class_names, config.new_head)
        logger.info(
            "Fine-tuning %s from %s%s",
            config.model,
            config.start_from,
            " with a new output layer" if config.new_head else "",
        )
    card = write_run_files(
        RunDir(run_dir),
        config,
        dataset,
        data,
        (train_split, val_split),
        removed,
        count,
        tuple(classifier.input_shape[1:]),
    )
    state = {"epochs_done": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": []}
    with backend.data_parallel(count):
        return _fit(run_dir, trainer, card, state, config, dataset, (train_split, val_split), verbose)


def _resumable_run(run_dir: Path, epochs: int | None) -> tuple[dict[str, Any], TrainConfig, ModelCard, dict[str, Any]]:
    """What a run folder says about the run to resume: config.json as saved, the config (with `epochs` if given),
    the checkpoint's card without its training state, and that state; an error if the run cannot go on."""
    files = RunDir(run_dir)
    saved = files.saved_config()
    config = TrainConfig.of_run(files, saved)
    checkpoint = files.checkpoint
    if not checkpoint.is_file():
        raise EmolensError(
            f"{run_dir} has no finished epoch to resume from (no last.keras). Start the run again without --resume."
        )
    if epochs is not None and epochs != config.epochs and config.schedule == "cosine":
        # The compiled schedule decays to zero at the planned last epoch; more epochs would all train at rate 0.
        raise EmolensError(
            f"{run_dir} follows a cosine schedule planned for {config.epochs} epochs; it cannot be extended to {epochs}. "
            "Resume it without --epochs, or start a new run with more epochs."
        )
    if epochs is not None:
        config = replace(config, epochs=epochs)
    card = read_card(checkpoint)
    if card is None or "training_state" not in card.details:
        raise EmolensError(
            f"{checkpoint} holds no training state: it is not a checkpoint emolens wrote. Start the run again without --resume."
        )
    state, card = card.details["training_state"], card.with_details(training_state=None)
    if state["epochs_done"] >= config.epochs:
        raise EmolensError(
            f"{run_dir} already finished {state['epochs_done']} of {config.epochs} epochs. Pass --epochs N to train further."
        )
    return saved, config, card, state


def resume(
    run_dir: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    epochs: int | None = None,
    cache: bool = True,
    verbose: int = 2,
    devices: int | str | None = None,
) -> TrainResult:
    """Continues an interrupted run from its last finished epoch, with the same data and settings.

    Args:
        run_dir: str or path. The run folder to continue.
        data: str or path or None. The dataset, if it moved; it must be the same data. Defaults to the run's.
        epochs: int or None. A new total epoch count, to train further than planned. Defaults to the run's.
        cache: bool. Use the decoded-dataset cache. Defaults to True.
        verbose: int. Keras's fit verbosity. Defaults to 2.
        devices: int, "all" or None. Continue data-parallel on this many devices, whatever the run began on
            (the batch is the same global batch, so the run goes on as it would have). Defaults to one.

    Returns:
        A TrainResult for the whole run.

    Example:
        >>> resume("runs/seed-20261204-120000")                 # doctest: +SKIP
        >>> resume("runs/seed-20261204-120000", epochs=80)      # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    saved, config, card, state = _resumable_run(run_dir, epochs)
    count = data_parallel_devices(devices, config)
    source = data if data is not None else saved["data"]["source"]
    dataset = load_dataset(source, cache=cache, labels=saved["data"].get("labels"))
    if config.start_from and not config.new_head:
        dataset = dataset.with_classes(tuple(saved["class_names"]))  # as train() widened it to the start model's
    # Runs begun before emolens recorded content digests can only compare the source's fingerprint.
    digest = saved["data"].get("content_digest")
    if (dataset.content_digest() != digest) if digest else (dataset.fingerprint != saved["data"]["fingerprint"]):
        raise EmolensError(
            f"the data at {source} has changed since {run_dir} began. Resume needs the same data; start a new run for new data."
        )
    with backend.data_parallel(count):
        trainer, _ = load_checkpoint(RunDir(run_dir).checkpoint)
    # A run killed while replacing a file leaves that write's temporary copy (see emolens._io.atomic_path).
    for stray in run_dir.glob(".*.partial*"):
        stray.unlink(missing_ok=True)
    logger.info("Resuming %s after epoch %d of %d", run_dir, state["epochs_done"], config.epochs)
    if epochs is not None:
        write_json(RunDir(run_dir).config, {**saved, "config": config.to_dict()})
    with backend.data_parallel(count):
        return _fit(run_dir, trainer, card, state, config, dataset, prepare_splits(dataset, config, count)[:2], verbose)
