"""A run's record, as types: what its config.json holds (the settings, the classes, the data it trained on, the
machine and versions), written once when the run begins and rewritten only when --resume --epochs extends it.

`RunRecord.read` is the one reader of config.json and `RunRecord.write` the one writer: the file's layout is
`RunRecord.to_dict`'s, and what `from_dict` accepts is checked field by field, so a damaged or hand-edited file is
a one-line error naming the file and the field, never a KeyError deep in resume or evaluate. The training progress
that changes after every epoch is `emolens.train.state.RunState`, kept in the checkpoint instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from emolens._io import read_file, stat_regular_file, write_json
from emolens.errors import EmolensError
from emolens.rundir import RunDir
from emolens.train.config import TrainConfig
from emolens.train.fields import Fields, is_count

# A config.json is a few kilobytes; one far larger was not written by emolens.
_MAX_CONFIG_BYTES = 16 * 1024 * 1024


def _present(record: Any) -> dict[str, Any]:
    """A record's fields in declaration order (the file's order), less those it has not got (None)."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return {name: value for name, value in values.items() if value is not None}


def _is_counts(value: object) -> bool:
    """Whether a JSON value is images per split and class: {"train": {"happy": 200, ...}, ...}."""
    return isinstance(value, dict) and all(
        isinstance(classes, dict) and all(is_count(n) for n in classes.values()) for classes in value.values()
    )


def _is_time(value: object) -> bool:
    """Whether a JSON value is a date and time as `datetime.isoformat` writes it."""
    try:
        return isinstance(value, str) and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What a run trained on: config.json's "data". Fields older runs did not record are None, and stay out of
    the file.

    Attributes:
        source: the dataset (folder, .zip or FER2013 .csv), as an absolute path.
        labels: the labels file that replaced the folders' labels, as an absolute path; None without one.
        fingerprint: the source's fingerprint (`emolens.data.Dataset.fingerprint`).
        content_digest: the decoded pixels' and labels' digest, which resume compares; None in runs that predate
            it (resume compares their fingerprints).
        counts: images per split and class, as loaded.
        skipped: files left out as unreadable or unlabelled.
        train_images: images trained on (after the split, --limit and --dedupe).
        val_images: images validated on.
        dedupe_removed: images --dedupe left out; None without --dedupe.
        train_sharpness: the training images' mean sharpness (see `emolens.data.quality`).
    """

    source: str
    labels: str | None = None
    fingerprint: str
    content_digest: str | None = None
    counts: dict[str, dict[str, int]] | None = None
    skipped: int | None = None
    train_images: int | None = None
    val_images: int | None = None
    dedupe_removed: int | None = None
    train_sharpness: float | None = None

    @classmethod
    def from_fields(cls, data: Fields) -> RunData:
        """The "data" object, checked (ValueError naming the field otherwise)."""
        result = cls(
            source=data.text("source"),
            labels=data.optional("labels", data.text),
            fingerprint=data.text("fingerprint"),
            content_digest=data.optional("content_digest", data.text),
            counts=data.optional("counts", lambda key: data.take(key, _is_counts, "images per split and class")),
            skipped=data.optional("skipped", data.count),
            train_images=data.optional("train_images", data.count),
            val_images=data.optional("val_images", data.count),
            dedupe_removed=data.optional("dedupe_removed", data.count),
            train_sharpness=data.optional("train_sharpness", lambda key: data.number(key, low=0)),
        )
        data.done()
        return result

    def to_dict(self) -> dict[str, Any]:
        return _present(self)


@dataclass(frozen=True, kw_only=True)
class RunEnvironment:
    """Where a run began: config.json's "environment" (`emolens.backend.summary`, and the devices it trained on).

    Attributes:
        backend: the Keras backend ("tensorflow", "torch", "jax").
        devices: the devices the backend found ("GPU:0 (...)", "CPU").
        threads: CPU threads.
        data_parallel_devices: the devices it trained on at once; None in runs that predate data parallelism.
    """

    backend: str
    devices: tuple[str, ...]
    threads: int
    data_parallel_devices: int | None = None

    @classmethod
    def from_fields(cls, environment: Fields) -> RunEnvironment:
        devices = environment.take(
            "devices", lambda v: isinstance(v, list) and all(isinstance(d, str) for d in v), "a list of names"
        )
        result = cls(
            backend=environment.text("backend"),
            devices=tuple(devices),
            threads=environment.count("threads"),
            data_parallel_devices=environment.optional("data_parallel_devices", environment.count),
        )
        environment.done()
        return result

    def to_dict(self) -> dict[str, Any]:
        return {**_present(self), "devices": list(self.devices)}


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """A run folder's config.json: every setting, the class names, the data, the environment and the versions.

    Attributes:
        config: the settings, as the run made them concrete (learning rate and precision resolved).
        class_names: the classes, in the model's output order.
        data: what it trained on (`RunData`).
        environment: where it began (`RunEnvironment`).
        versions: package -> version, of Python, emolens, Keras, the backend and the libraries it used.
        created: when the run began (ISO 8601, UTC).

    Examples:
        >>> record = RunRecord(
        ...     config=TrainConfig(model="seed", epochs=3, learning_rate=0.001, precision="float32"),
        ...     class_names=("happy", "sad"),
        ...     data=RunData(source="/data/faces", fingerprint="ade513606f88de2e", counts={"train": {"happy": 9, "sad": 8}}),
        ...     environment=RunEnvironment(backend="tensorflow", devices=("CPU",), threads=2, data_parallel_devices=1),
        ...     versions={"emolens": "0.1.0"},
        ...     created="2026-12-06T22:30:04+00:00",
        ... )
        >>> RunRecord.from_dict(record.to_dict()) == record, list(record.to_dict()["data"])
        (True, ['source', 'fingerprint', 'counts'])
        >>> RunRecord.from_dict({**record.to_dict(), "class_names": "happy"})
        Traceback (most recent call last):
        ValueError: "class_names" is not a list of distinct names (it is "happy")
    """

    config: TrainConfig
    class_names: tuple[str, ...]
    data: RunData
    environment: RunEnvironment
    versions: dict[str, str]
    created: str

    @classmethod
    def from_dict(cls, values: object) -> RunRecord:
        """The record `to_dict` wrote (older runs' too: settings added since take their defaults, but precision
        "float32", as such runs trained).

        Raises:
            ValueError: a part missing, unknown, of the wrong type or out of range, named (a damaged or edited file).
        """
        record = Fields(values)
        settings = record.take("config", lambda v: isinstance(v, dict), "an object")
        result = cls(
            config=TrainConfig.from_dict({"precision": "float32", **settings}),
            class_names=record.names("class_names"),
            data=RunData.from_fields(record.nested("data")),
            environment=RunEnvironment.from_fields(record.nested("environment")),
            versions=record.texts("versions"),
            created=record.take("created", _is_time, "a date and time (ISO 8601)"),
        )
        record.done()
        return result

    def to_dict(self) -> dict[str, Any]:
        """config.json's JSON object."""
        return {
            "config": self.config.to_dict(),
            "class_names": list(self.class_names),
            "data": self.data.to_dict(),
            "environment": self.environment.to_dict(),
            "versions": dict(self.versions),
            "created": self.created,
        }

    @classmethod
    def read(cls, run: RunDir | str | os.PathLike) -> RunRecord:
        """The record in run folder `run`'s config.json.

        Raises:
            EmolensError: the folder has no config.json, or it is unreadable or damaged: the message names the
                file and the field.
        """
        files = run if isinstance(run, RunDir) else RunDir(run)
        try:
            stat_regular_file(files.config, _MAX_CONFIG_BYTES)  # a folder or a FIFO named config.json, said so
            return cls.from_dict(json.loads(read_file(files.config, _MAX_CONFIG_BYTES).decode("utf-8")))
        except FileNotFoundError as error:
            raise EmolensError(
                f"{files.path} is not an emolens run folder (no config.json). Pass the folder `emolens train` wrote."
            ) from error
        except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise files.damaged(error) from error

    def write(self, run: RunDir | str | os.PathLike) -> None:
        """Writes the record as run folder `run`'s config.json, atomically."""
        write_json((run if isinstance(run, RunDir) else RunDir(run)).config, self.to_dict())
