"""Batch prediction over more pictures than one process gets through: Ray Data actors, Parquet out.

    from emolens.predict.ray_engine import predict_to_parquet
    summary = predict_to_parquet(["photos/", "archive.zip"], "results/", workers=8)

Each actor loads the model and the detector once (ONNX Runtime and OpenCV on one thread each) and runs
`Recognizer.predict` on the inputs it is given, so the rows are what `emolens predict --json` gives for the same
inputs. Ray Data's write tasks write the rows as Parquet parts (`part-<random>.parquet`, see `ray_parts`), each
atomically and holding whole inputs only, so a re-run of the same command skips every input a part already
holds: a job stopped by a crash or a preemption resumes where its parts ended. `out` must be a folder every
node of the cluster can write (a shared file system) when the cluster has more than one machine.

The driver streams: it lists the inputs as it reads them into a Parquet file of records in a hidden folder of
`out` (removed at the end), which Ray's workers read block by block, and it never receives a row, only a count
of finished pictures for the progress bar. Its memory does not grow with the number of inputs (bench/scale.py).

Rows are `emolens.predict.formats.result_rows`: one per face (per analysed frame in videos), one per picture
without faces, one per unreadable input with its error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emolens._native import native_stderr_silenced
from emolens._progress import progress_bar
from emolens.errors import EmolensError
from emolens.models.classifier import DEFAULT_MODEL, load_classifier
from emolens.predict.detectors import DetectorConfig
from emolens.predict.inputs import InputFile, ZipMember, count_input_pictures, iter_pictures
from emolens.predict.picture import Picture
from emolens.predict.sources import Source, as_sources, listed_inputs

if TYPE_CHECKING:  # Ray is an optional extra: its modules are imported once it is known to be there
    from collections.abc import Iterator

    from emolens.predict.ray_parts import DoneSources

logger = logging.getLogger(__name__)

# Inputs per actor call: small, so that the progress bar moves steadily.
INPUTS_PER_CALL = 4
BLOCKS_PER_ACTOR = 8
MAX_BLOCK_INPUTS = 1024
# Records the driver holds while it lists the inputs into the listing file: a row group of it, read by one task.
LISTING_ROWS = 10_000
PROGRESS_SECONDS = 0.5
# Each actor's libraries on one thread: the actors are the parallelism, and more threads only contend.
ACTOR_ENV = {"OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _require_ray():
    try:
        import pyarrow  # noqa: F401
        import ray
    except ImportError as error:
        raise EmolensError(
            f'--engine ray needs Ray Data, which is not installed ({error.name}): pip install "emolens[ray]"'
        ) from None
    return ray


@dataclass(frozen=True)
class BatchSettings:
    """What each actor needs to predict as `emolens predict` would (sent to every actor once)."""

    model: str = DEFAULT_MODEL
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tta: str = "none"
    every: int = 1
    smooth: int = 0


@dataclass(frozen=True)
class BatchSummary:
    """What a `predict_to_parquet` call did: inputs it predicted on and skipped (already in the folder), the
    rows and parts it wrote, the inputs that failed, and how long it took (Ray's start included)."""

    inputs: int
    skipped: int
    rows: int
    parts: int
    errors: int
    seconds: float
    startup_seconds: float


def _as_record(item: InputFile | ZipMember | Picture) -> dict[str, object]:
    """An input as plain columns that Ray Data can ship to an actor."""
    if isinstance(item, ZipMember):
        return {"kind": "zip", "path": str(item.path), "member": item.member, "name": item.name, "error": ""}
    if isinstance(item, InputFile):
        return {"kind": "file", "path": str(item.path), "member": "", "name": item.name, "error": ""}
    return {"kind": "error", "path": item.source, "member": "", "name": item.name, "error": item.error or "unreadable"}


def _from_record(kind: str, path: str, member: str, name: str, error: str) -> InputFile | ZipMember | Picture:
    if kind == "zip":
        return ZipMember(Path(path), member, name)
    if kind == "file":
        return InputFile(Path(path), name)
    return Picture(path, name, None, None, error=error)


class _PicturesDone:
    """A Ray actor counting the pictures the predicting actors have finished, for the driver's progress bar."""

    def __init__(self) -> None:
        self.pictures = 0

    def add(self, pictures: int) -> None:
        self.pictures += pictures

    def read(self) -> int:
        return self.pictures


class _PredictActor:
    """A Ray actor: one Recognizer, loaded once, predicting on batches of input records."""

    def __init__(self, settings: BatchSettings, class_names: list[str], counter) -> None:
        import cv2

        from emolens.predict.ray_parts import part_schema
        from emolens.predict.recognizer import Recognizer

        cv2.setNumThreads(1)
        classifier = load_classifier(settings.model, threads=1)
        self.recognizer = Recognizer(classifier=classifier, detector=settings.detector, tta=settings.tta, workers=1)
        self.settings = settings
        self.schema = part_schema(class_names)
        self.counter = counter

    def __call__(self, batch: dict) -> object:
        import pyarrow as pa

        from emolens.predict.formats import result_rows

        rows: list[dict[str, object]] = []
        pictures = 0
        for kind, path, member, name, error in zip(
            batch["kind"], batch["path"], batch["member"], batch["name"], batch["error"], strict=True
        ):
            item = _from_record(str(kind), str(path), str(member), str(name), str(error))
            for result in self.recognizer.predict_pictures(
                iter_pictures(item, every=self.settings.every), smooth=self.settings.smooth, errors="keep"
            ):
                rows.extend(result_rows(result))
                pictures += 1
        self.counter.add.remote(pictures)
        return pa.Table.from_pylist(rows, schema=self.schema)


_RECORD_COLUMNS = ("kind", "path", "member", "name", "error")


@dataclass
class _Listing:
    """The inputs still to predict on, streamed from the sources into a Parquet file (LISTING_ROWS records a row
    group), with what was skipped as done and how many pictures the inputs hold."""

    path: Path
    inputs: int = 0
    skipped: int = 0
    pictures: int = 0

    def write(self, source: Source, done: DoneSources, every: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(column, pa.string()) for column in _RECORD_COLUMNS])
        records: list[dict[str, object]] = []
        with pq.ParquetWriter(self.path, schema) as writer:
            for item in listed_inputs(as_sources(source, every)):
                if not isinstance(item, (InputFile, ZipMember, Picture)):
                    raise EmolensError(
                        f"--engine ray reads files, not {type(item).__name__} inputs: pass paths, or use the local engine."
                    )
                if item.source in done:  # the `source` its rows carry
                    self.skipped += 1
                    continue
                records.append(_as_record(item))
                self.inputs += 1
                self.pictures += count_input_pictures(item, every=every)
                if len(records) == LISTING_ROWS:
                    writer.write_table(pa.Table.from_pylist(records, schema=schema))
                    records = []
            if records:  # an empty row group would become an empty read task
                writer.write_table(pa.Table.from_pylist(records, schema=schema))


def predict_to_parquet(
    source: Source,
    out: str | os.PathLike,
    *,
    settings: BatchSettings = BatchSettings(),
    address: str | None = None,
    workers: int | None = None,
) -> BatchSummary:
    """Predicts on every picture of `source` in Ray actors and writes the rows as Parquet parts into `out`.

    Args:
        source: paths (images, videos, folders, ZIP archives, .txt lists of paths), a list of them, or a Sources
            of them.
        out: the folder for the parts; inputs whose rows are already there are skipped.
        settings: the model, detector and prediction options every actor uses.
        address: a Ray cluster to join ("auto", "ray://host:port"); None starts a local Ray for this call and
            stops it after.
        workers: actors (each one CPU). Defaults to the cluster's CPUs (a local Ray: this machine's cores).

    Returns:
        A BatchSummary.

    Raises:
        EmolensError: Ray is not installed, or the cluster cannot be reached; an input is not a path;
            `settings.every` differs from the Sources' own.
    """
    ray = _require_ray()
    from emolens.predict.ray_parts import DoneSources

    if workers is not None and workers < 1:
        raise EmolensError(f"workers must be at least 1, not {workers}.")
    began = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = DoneSources(out)
    # The listing lies in `out`, which every node of a cluster can reach, hidden from the parts and removed after.
    with tempfile.TemporaryDirectory(prefix=".listing-", dir=out) as scratch:
        listing = _Listing(Path(scratch) / "inputs.parquet")
        listing.write(source, done, settings.every)
        if not listing.inputs:
            return BatchSummary(0, listing.skipped, 0, 0, 0, time.perf_counter() - began, 0.0)
        class_names = _class_names(settings.model)  # also checks the model before any actor starts
        started_here = not ray.is_initialized()
        if started_here:
            _start_ray(ray, address, workers)
        try:
            startup = time.perf_counter() - began
            sink = _predict_into(ray, out, listing, settings, class_names, workers)
        finally:
            if started_here:
                ray.shutdown()
    return BatchSummary(
        listing.inputs, listing.skipped, sink.rows, sink.parts, sink.errors, time.perf_counter() - began, startup
    )


def _predict_into(
    ray, out: Path, listing: _Listing, settings: BatchSettings, class_names: list[str], workers: int | None
):
    """Runs the job: the listing read in blocks, predicted by a pool of actors that each load the model once,
    written by a PartSink; the driver only moves the progress bar. Returns the sink, with its counts."""
    from emolens.predict.ray_parts import ListingSource, PartSink

    # Never more actors than inputs: each one costs a process start and a model load.
    actors = min(listing.inputs, workers or max(1, int(ray.cluster_resources().get("CPU", 1))))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = context.print_on_execution_start = False  # ours counts pictures
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # set once ray.data has configured its logging
    counter = ray.remote(num_cpus=0)(_PicturesDone).remote()
    # Blocks of the listing are handed out whole to actors, BLOCKS_PER_ACTOR each to spread the work evenly.
    # Reading them takes no CPU of its own (the actors hold every one, and the read would wait for it), so their
    # number is capped instead: one task at a time reads a row group in milliseconds, while an actor takes
    # seconds over a block, and without a cap Ray started a worker process for each of 17 reads at once.
    inputs_per_block = min(MAX_BLOCK_INPUTS, max(1, -(-listing.inputs // (BLOCKS_PER_ACTOR * actors))))
    dataset = ray.data.read_datasource(
        ListingSource(listing.path, inputs_per_block), num_cpus=0, concurrency=1
    ).map_batches(
        _PredictActor,
        fn_constructor_args=(settings, class_names, counter),
        batch_size=INPUTS_PER_CALL,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
        batch_format="numpy",
        udf_modifying_row_count=True,
    )
    sink = PartSink(out, class_names)
    failure: list[BaseException] = []

    def write() -> None:
        try:  # write tasks take no CPU of their own: the actors hold every one
            dataset.write_datasink(sink, ray_remote_args={"num_cpus": 0})
        except BaseException as error:  # noqa: BLE001  (raised again on the driver's thread)
            failure.append(error)

    writing = threading.Thread(target=write, name="emolens-ray-job", daemon=True)
    writing.start()
    shown = 0
    with progress_bar(total=listing.pictures, description="Pictures") as advance:
        while writing.is_alive():
            writing.join(PROGRESS_SECONDS)
            finished = ray.get(counter.read.remote())
            advance(finished - shown)
            shown = finished
    if failure:
        raise failure[0]
    return sink


def _start_ray(ray, address: str | None, workers: int | None) -> None:
    """Joins `address`, or starts a local Ray quietly (no dashboard, workers' logs kept out of the terminal)
    with a CPU for each of `workers`, more than the cores if asked (an actor without a CPU would never start)."""
    options: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        options["num_cpus"] = max(os.cpu_count() or 1, workers or 1)
    else:
        options["address"] = address
        # A cluster's workers were started without ACTOR_ENV: its processes get it as a runtime environment.
        options["runtime_env"] = {"env_vars": ACTOR_ENV}
    # Ray's C++ core logs each actor's start at error level ("constructor arguments in the object store"), and
    # that level change at start-up, which is silenced (a failed start still raises).
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with native_stderr_silenced(), _environment(ACTOR_ENV if address is None else {}):
            ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EmolensError(f"could not reach the Ray cluster at {address}: {error}") from None


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """os.environ with `variables` set, restored after: a local Ray's processes inherit the environment it
    starts in, so its prestarted workers serve the actors (a runtime environment would start new ones, 2.5 s
    of a 10 s fixed cost on 2 cores)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def _class_names(model: str | os.PathLike) -> list[str]:
    return load_classifier(model, threads=1).class_names


__all__ = ["BatchSettings", "BatchSummary", "predict_to_parquet"]
