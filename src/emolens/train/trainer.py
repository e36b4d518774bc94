"""Starting a training run: the model that fit trains, and a new run folder for it.

`train` makes the config concrete (`_run_config`, taking a start model's architecture: `train/finetune.py`),
prepares the data (`train/data.py`) and the trainer (`build_trainer`: augmentation in front of the classifier),
writes the run folder's first files (`train/run_folder.py`), then hands all of it to `fit_run`
(`train/fitting.py`), which trains and calibrates. `resume` (`train/resuming.py`) goes on with a run from its folder.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import replace

import keras

from emolens import backend
from emolens.constants import IMAGE_SIZE
from emolens.data.augment import build_augmenter
from emolens.data.cache import load_dataset
from emolens.data.dataset import Dataset
from emolens.data.sources import refuse_output_inside
from emolens.errors import EmolensError
from emolens.models import build_model
from emolens.models.classifier import DEFAULT_MODEL, keras_model_path, load_classifier, resolve_model_path
from emolens.rundir import RunDir
from emolens.train.config import TrainConfig
from emolens.train.data import check_trainable_classes, prepare_splits
from emolens.train.distill import teacher_answers_layer
from emolens.train.finetune import StartModel, load_start_model, start_architecture, start_classes, transfer_weights
from emolens.train.fitting import TrainResult, compile_trainer, fit_run
from emolens.train.optim import base_learning_rate, make_optimizer, resolve_precision
from emolens.train.run_folder import new_run_dir, write_run_files
from emolens.train.state import RunState

logger = logging.getLogger(__name__)


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


def build_trainer(
    config: TrainConfig,
    *,
    num_classes: int,
    steps_per_epoch: int = 1,
    teacher: keras.layers.Layer | None = None,
) -> keras.Model:
    """The compiled model that fit trains: augmentation in front of the classifier (named config.model), and
    with `teacher` (a `TeacherAnswers`, for config.view_teacher) the teacher's answers for the same
    augmented views beside the classifier's (see `emolens.train.distill`).

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
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1))
    # An empty Sequential cannot be built, so with every transform off there is no augmentation stage at all.
    views = augmenter(inputs) if augmenter.layers else inputs
    crops = keras.layers.CenterCrop(config.crop, config.crop)(views) if config.crop < IMAGE_SIZE else views
    outputs = classifier(crops)
    if teacher is not None:
        outputs = keras.layers.Concatenate(name="student_and_teacher")([outputs, teacher(views)])
    trainer = keras.Model(inputs, outputs, name="trainer")
    backend.allow_xla(trainer)  # before compile, which decides whether XLA compiles the step
    backend.fuse_batch_norm(trainer)
    compile_trainer(trainer, config, make_optimizer(config, steps_per_epoch))
    return trainer


def _run_config(config: TrainConfig) -> tuple[TrainConfig, StartModel | None]:
    """`config` made concrete for a new run (the learning rate and precision resolved), and with start_from, the
    model to start from and its card: a fine-tuned model keeps its architecture and input crop."""
    start = None
    if config.start_from:
        start = load_start_model(config.start_from)
        architecture = start_architecture(start.card, config.start_from)
        config = replace(config, model=architecture, crop=start.card.input_shape[0])
    if config.teacher and config.teacher != DEFAULT_MODEL:
        # The teacher's file, absolute: --resume finds it from any folder, and a missing one stops the run here.
        config = replace(config, teacher=str(resolve_model_path(config.teacher).resolve()))
    if config.teacher:
        load_classifier(config.teacher).check_views(config.teacher_tta)  # before the run folder, not after
    if config.view_teacher:
        keras_model_path(config.view_teacher)  # the teacher runs inside the trainer: an .onnx alone is refused here
    # Resolving the model's learning rate first also rejects an unknown model before any data is read.
    return replace(config, learning_rate=base_learning_rate(config), precision=resolve_precision(config)), start


def _new_trainer(
    config: TrainConfig,
    dataset: Dataset,
    train_images: int,
    devices: int,
    start: StartModel | None,
) -> keras.Model:
    """The run's trainer (see `build_trainer`), freshly seeded, for `devices`; a fine-tuning run's classifier
    takes the weights of the model it starts from (`start`)."""
    keras.utils.set_random_seed(config.seed)
    with backend.data_parallel(devices):
        teacher = (
            teacher_answers_layer(config.view_teacher, dataset.class_names, precision=config.precision)
            if config.view_teacher
            else None
        )
        trainer = build_trainer(
            config,
            num_classes=len(dataset.class_names),
            steps_per_epoch=math.ceil(train_images / config.batch_size),
            teacher=teacher,
        )
    if start is not None:
        classifier = trainer.get_layer(config.model)
        transfer_weights(classifier, start.network, start.card.class_names, dataset.class_names, config.new_head)
        logger.info(
            "Fine-tuning %s from %s%s",
            config.model,
            config.start_from,
            " with a new output layer" if config.new_head else "",
        )
    return trainer


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

    Examples:
        >>> result = train("fer2013.zip", TrainConfig(model="seed", epochs=50))  # doctest: +SKIP
        >>> result.run_dir / "model.keras"  # doctest: +SKIP
    """
    config, start = _run_config(config or TrainConfig())
    count = data_parallel_devices(devices, config)
    if out is not None:
        refuse_output_inside(out, data)
    dataset = load_dataset(data, cache=cache, labels=labels)
    check_trainable_classes(dataset)
    if start is not None:
        dataset = start_classes(dataset, start.card, config.new_head)
    train_split, val_split, removed = prepare_splits(dataset, config, count)
    run_dir = new_run_dir(config.model, out)
    trainer = _new_trainer(config, dataset, len(train_split), count, start)
    card = write_run_files(
        RunDir(run_dir),
        config,
        dataset,
        data,
        (train_split, val_split),
        removed,
        count,
        tuple(trainer.get_layer(config.model).input_shape[1:]),
    )
    with backend.data_parallel(count):
        return fit_run(run_dir, trainer, card, RunState(), config, dataset, (train_split, val_split), verbose)
