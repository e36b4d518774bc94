"""Resuming an interrupted run: the same state rebuilt from its run folder's checkpoint, then fit goes on.

`resume` checks that the run can go on (a checkpoint emolens wrote, epochs left, the same data), reloads the
trainer from last.keras with its training state, and hands it to `fit_run` (`train/fitting.py`) as `train` does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from emolens import backend
from emolens.data.cache import load_dataset
from emolens.errors import EmolensError
from emolens.models.card import ModelCard
from emolens.models.saving import load_checkpoint, read_card
from emolens.rundir import RunDir
from emolens.train.data import prepare_splits
from emolens.train.fitting import TrainResult, fit_run
from emolens.train.record import RunRecord
from emolens.train.state import CARD_KEY, RunState
from emolens.train.trainer import data_parallel_devices

logger = logging.getLogger(__name__)


def _resumable_run(run_dir: Path, epochs: int | None) -> tuple[RunRecord, ModelCard, RunState]:
    """What a run folder says about the run to resume: its record (its config with `epochs` if given), the
    checkpoint's card without its training state, and that state; an error if the run cannot go on."""
    record = RunRecord.read(run_dir)
    config = record.config
    checkpoint = RunDir(run_dir).checkpoint
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
        record = replace(record, config=replace(config, epochs=epochs))
    card = read_card(checkpoint)
    state = RunState.from_card(card, checkpoint)
    assert card is not None  # from_card refuses a file without one
    if state.epochs_done >= record.config.epochs:
        raise EmolensError(
            f"{run_dir} already finished {state.epochs_done} of {record.config.epochs} epochs. Pass --epochs N to train further."
        )
    return record, card.with_details(**{CARD_KEY: None}), state


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

    Examples:
        >>> resume("runs/seed-20261204-120000")                 # doctest: +SKIP
        >>> resume("runs/seed-20261204-120000", epochs=80)      # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    record, card, state = _resumable_run(run_dir, epochs)
    config, recorded = record.config, record.data
    count = data_parallel_devices(devices, config)
    source = data if data is not None else recorded.source
    dataset = load_dataset(source, cache=cache, labels=recorded.labels)
    if config.start_from and not config.new_head:
        dataset = dataset.with_classes(record.class_names)  # as train() widened it to the start model's
    # Runs begun before emolens recorded content digests can only compare the source's fingerprint.
    digest = recorded.content_digest
    if (dataset.content_digest() != digest) if digest else (dataset.fingerprint != recorded.fingerprint):
        raise EmolensError(
            f"the data at {source} has changed since {run_dir} began. Resume needs the same data; start a new run for new data."
        )
    with backend.data_parallel(count):
        trainer, _ = load_checkpoint(RunDir(run_dir).checkpoint)
    backend.fuse_batch_norm(trainer)  # a saved model keeps Keras's own BatchNormalization
    # A run killed while replacing a file leaves that write's temporary copy (see emolens._io.atomic_path).
    for stray in run_dir.glob(".*.partial*"):
        stray.unlink(missing_ok=True)
    logger.info("Resuming %s after epoch %d of %d", run_dir, state.epochs_done, config.epochs)
    if epochs is not None:
        record.write(run_dir)
    with backend.data_parallel(count):
        return fit_run(
            run_dir, trainer, card, state, config, dataset, prepare_splits(dataset, config, count)[:2], verbose
        )
