"""What a run folder holds and how it is kept (the names are in `emolens.rundir`):

    config.json    every setting, class names, versions and the data's fingerprint (written when a run begins;
                   `emolens.train.record.RunRecord` reads and writes it)
    model.keras    the best epoch by validation accuracy (what evaluate and predict use)
    last.keras     the last finished epoch with its optimizer and training state (`emolens.train.state.RunState`,
                   what --resume uses)
    history.csv    one row per finished epoch
    curves.png     accuracy and loss per epoch, redrawn after each epoch
    used_images.csv  every image trained on or validated on (evaluate leaves them out of other splits)
    skipped_files.txt, removed.csv  unreadable files, and images --dedupe left out, if there were any

Each file is replaced atomically after every epoch, so a kill at any moment loses at most the epoch under way.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import keras

from emolens import backend
from emolens._io import write_text
from emolens.constants import IMAGE_SIZE
from emolens.data.dataset import Dataset, Split, pixel_digests
from emolens.data.inspection import ImageRef, write_removed_list
from emolens.data.preprocess import PREPROCESSING
from emolens.data.quality import sharpness
from emolens.errors import EmolensError
from emolens.models import build_model
from emolens.models.card import ModelCard
from emolens.models.saving import save_model
from emolens.plots import plot_curves
from emolens.rundir import RunDir
from emolens.train.config import TrainConfig
from emolens.train.record import RunData, RunEnvironment, RunRecord
from emolens.train.state import CARD_KEY, RunState

logger = logging.getLogger(__name__)

HISTORY_FIELDS = ("epoch", "accuracy", "loss", "val_accuracy", "val_loss", "learning_rate", "seconds")


def history_csv(history: list[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def float32_twin(card: ModelCard) -> keras.Model:
    """The same architecture built under the float32 policy, to hold a mixed-precision model's weights."""
    if card.model is None:
        raise EmolensError("the model's card names no architecture, so it cannot be rebuilt in float32.")
    return build_model(card.model, input_shape=card.input_shape, num_classes=len(card.class_names))


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: best model, resumable checkpoint, history and curves, each written atomically."""

    def __init__(self, run_dir: Path, classifier: keras.Model, card: ModelCard, state: RunState) -> None:
        super().__init__()
        self.files = RunDir(run_dir)
        self.classifier = classifier
        # model.keras is always float32, whatever precision trains: inference and ONNX export need no special case.
        mixed = any(layer.dtype_policy.name != "float32" for layer in classifier.layers)
        self.float32_twin = float32_twin(card) if mixed else None
        self.card = card
        self.state = state
        self._epoch_start = 0.0
        self._learning_rate = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()
        # Read now: a plateau schedule may lower the rate at this epoch's end, for the next one.
        self._learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {
            "epoch": epoch + 1,
            **{k: float(logs[k]) for k in ("accuracy", "loss", "val_accuracy", "val_loss") if k in logs},
        }
        row["learning_rate"] = self._learning_rate
        row["seconds"] = round(time.perf_counter() - self._epoch_start, 2)
        if self.state.end_epoch(row):
            best = self.classifier
            if self.float32_twin is not None:
                self.float32_twin.set_weights(self.classifier.get_weights())
                best = self.float32_twin
            save_model(
                best, self.files.model, self.card.with_details(epoch=epoch + 1, val_accuracy=row["val_accuracy"])
            )
        # last.keras is written after model.keras: the state inside it is what resume trusts.
        save_model(self.model, self.files.checkpoint, self.card.with_details(**{CARD_KEY: self.state.to_dict()}))
        write_text(self.files.history, history_csv(self.state.history))
        plot_curves(self.state.history, self.files.curves)


def used_images_csv(splits: dict[str, Split]) -> str:
    """split,name,digest for every image of `splits` (see `emolens.data.dataset.pixel_digests`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["split", "name", "digest"])
    for split_name, split in splits.items():
        writer.writerows(
            (split_name, name, digest) for name, digest in zip(split.names, pixel_digests(split.images), strict=True)
        )
    return buffer.getvalue()


def new_run_dir(model: str, out: str | os.PathLike | None) -> Path:
    if out is not None:
        run_dir = Path(out)
        if RunDir(run_dir).checkpoint.exists():
            raise EmolensError(
                f"{run_dir} already holds a training run. Resume it with --resume {run_dir}, or choose another --out."
            )
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs") / f"{model}-{stamp}"
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = Path("runs") / f"{model}-{stamp}-{suffix}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def write_run_files(
    files: RunDir,
    config: TrainConfig,
    dataset: Dataset,
    data: str | os.PathLike,
    splits: tuple[Split, Split],
    removed: list[tuple[ImageRef, str]],
    devices: int,
    input_shape: tuple[int, int, int],
) -> ModelCard:
    """A new run's config.json (every setting, the data's counts and fingerprints, the environment), its lists of
    skipped and left-out files, and the card its models will carry."""
    train_split, val_split = splits
    train_sharpness = sharpness(train_split.images)
    environment = backend.summary()
    RunRecord(
        config=config,
        class_names=dataset.class_names,
        data=RunData(
            source=str(Path(data).resolve()),
            labels=str(Path(dataset.labels_file).resolve()) if dataset.labels_file else None,
            fingerprint=dataset.fingerprint,
            content_digest=dataset.content_digest(),
            counts=dataset.counts(),
            skipped=len(dataset.skipped),
            train_images=len(train_split),
            val_images=len(val_split),
            dedupe_removed=len(removed) if config.dedupe != "none" else None,
            train_sharpness=round(train_sharpness, 2),
        ),
        environment=RunEnvironment(
            backend=environment["backend"],
            devices=tuple(environment["devices"]),
            threads=environment["threads"],
            data_parallel_devices=devices,
        ),
        versions=backend.versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    ).write(files)
    write_text(files.used_images, used_images_csv({"train": train_split, "val": val_split}))
    if removed:
        write_removed_list(files.removed, removed)
        logger.info("--dedupe left out %d images (listed in %s)", len(removed), files.removed)
    if dataset.skipped:
        write_text(files.skipped, "".join(f"{s.name}\t{s.reason}\n" for s in dataset.skipped))
    card = ModelCard(
        model=config.model,
        class_names=dataset.class_names,
        input_shape=input_shape,
        # Faces are prepared at this side; a smaller input_shape means the network sees crops of them.
        image_size=IMAGE_SIZE,
        preprocessing=PREPROCESSING,
        # Lets evaluate warn when it is given images unlike the training images (see emolens.data.quality).
        train_sharpness=round(train_sharpness, 2),
        details={"data_fingerprint": dataset.fingerprint},
    )
    return card
