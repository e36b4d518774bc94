"""Batch prediction over more pictures than one process gets through: Ray Data actors, Parquet out.

    from emolens.predict.ray_engine import predict_to_parquet
    summary = predict_to_parquet(["photos/", "archive.zip"], "results/", workers=8)

Each actor loads the model and the detector once (ONNX Runtime and OpenCV on one thread each) and runs
`Recognizer.predict` on the inputs it is given, so the rows are what `emolens predict --json` gives for the same
inputs. The driver collects the rows of finished inputs and writes them as Parquet parts (`part-00000.parquet`,
...), each atomically and holding whole inputs only, so a re-run of the same command skips every input a part
already holds: a job stopped by a crash or a preemption resumes where its last part ended.

Rows are `emolens.predict.writers.result_rows`: one per face (per analysed frame in videos), one per picture
without faces, one per unreadable input with its error.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from emolens._io import atomic_path
from emolens._native import native_stderr_silenced
from emolens._progress import progress_bar
from emolens.errors import EmolensError
from emolens.models.classifier import DEFAULT_MODEL, load_classifier
from emolens.predict.detectors import DetectorConfig
from emolens.predict.inputs import InputFile, Source, ZipMember, count_pictures, expand_sources
from emolens.predict.picture import Picture

logger = logging.getLogger(__name__)

PART_GLOB = "part-*.parquet"
# A part is written once this many inputs have finished, or this many seconds after the last: big enough to
# keep the part count small on a long job, soon enough that a crash loses at most a minute of work.
PART_INPUTS = 2000
PART_SECONDS = 60.0
# Inputs per actor call: small, so that work spreads evenly over actors and the progress bar moves steadily.
INPUTS_PER_CALL = 4
# Bookkeeping columns: which input a row came from, how many rows and pictures that input gave.
_INPUT, _INPUT_ROWS, _INPUT_PICTURES = "_input", "_input_rows", "_input_pictures"


def _require_ray():
    try:
        import pyarrow  # noqa: F401
        import ray
    except ImportError as error:
        raise EmolensError(f'--engine ray needs Ray Data, which is not installed ({error.name}): pip install "emolens[ray]"') from None
    return ray


@dataclass(frozen=True)
class BatchSettings:
    """What each actor needs to predict as `emolens predict` would (sent to every actor once)."""

    model: str = DEFAULT_MODEL
    detector: DetectorConfig = DetectorConfig()
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


def _as_record(index: int, item: InputFile | ZipMember | Picture) -> dict[str, object]:
    """An input as plain columns that Ray Data can ship to an actor."""
    if isinstance(item, ZipMember):
        return {"index": index, "kind": "zip", "path": str(item.path), "member": item.member, "name": item.name, "error": ""}
    if isinstance(item, InputFile):
        return {"index": index, "kind": "file", "path": str(item.path), "member": "", "name": item.name, "error": ""}
    return {"index": index, "kind": "error", "path": item.source, "member": "", "name": item.name, "error": item.error or "unreadable"}


def _from_record(kind: str, path: str, member: str, name: str, error: str) -> InputFile | ZipMember | Picture:
    if kind == "zip":
        return ZipMember(Path(path), member, name)
    if kind == "file":
        return InputFile(Path(path), name)
    return Picture(path, name, None, None, error=error)


class _PredictActor:
    """A Ray actor: one Recognizer, loaded once, predicting on batches of input records."""

    def __init__(self, settings: BatchSettings) -> None:
        import cv2

        from emolens.predict.recognizer import Recognizer

        cv2.setNumThreads(1)
        classifier = load_classifier(settings.model, threads=1)
        self.recognizer = Recognizer(classifier=classifier, detector=settings.detector, tta=settings.tta, workers=1)
        self.settings = settings

    def __call__(self, batch: dict) -> object:
        import pyarrow as pa

        from emolens.predict.writers import result_rows

        rows: list[dict[str, object]] = []
        for index, kind, path, member, name, error in zip(batch["index"], batch["kind"], batch["path"], batch["member"], batch["name"], batch["error"]):
            item = _from_record(str(kind), str(path), str(member), str(name), str(error))
            results = self.recognizer.predict(item, every=self.settings.every, smooth=self.settings.smooth, errors="keep")
            produced = [row for result in results for row in result_rows(result)]
            for row in produced:
                row.update({_INPUT: int(index), _INPUT_ROWS: len(produced), _INPUT_PICTURES: len(results)})
            rows.extend(produced)
        return pa.Table.from_pylist(rows, schema=_schema(self.recognizer.class_names, bookkeeping=True))


def _schema(class_names: list[str], *, bookkeeping: bool = False):
    """The Parquet columns (see `result_rows`), nullable where a value may not apply."""
    import pyarrow as pa

    columns = [
        ("source", pa.string()), ("name", pa.string()), ("frame", pa.int64()), ("time", pa.float64()),
        ("width", pa.int32()), ("height", pa.int32()), ("face", pa.int32()), ("track_id", pa.int64()),
        ("x", pa.int32()), ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32()), ("score", pa.float64()),
        ("emotion", pa.string()), ("confidence", pa.float64()), *((name, pa.float64()) for name in class_names),
        ("error", pa.string()),
    ]  # fmt: skip
    if bookkeeping:
        columns += [(_INPUT, pa.int64()), (_INPUT_ROWS, pa.int64()), (_INPUT_PICTURES, pa.int64())]
    return pa.schema(columns)


def done_sources(out: Path) -> set[str]:
    """The sources whose rows the Parquet parts in `out` already hold.

    Raises:
        EmolensError: a part that is not one emolens wrote (not Parquet, or without a text "source" column).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    done: set[str] = set()
    for part in sorted(out.glob(PART_GLOB)):
        try:
            sources = pq.read_table(part, columns=["source"]).column("source")
            if not pa.types.is_string(sources.type):
                raise TypeError(f"its source column holds {sources.type}, not text")
        except (pa.ArrowException, OSError, KeyError, TypeError) as error:
            raise EmolensError(f"{part} is not a part emolens wrote ({error}): move it out of {out}, or choose another --out.") from error
        done.update(sources.to_pylist())
    return done


class _PartWriter:
    """Collects rows until their inputs are whole, and writes whole inputs as numbered Parquet parts."""

    def __init__(self, out: Path, class_names: list[str]) -> None:
        self.out = out
        self.schema = _schema(class_names)
        numbers = [int(part.stem.split("-")[1]) for part in out.glob(PART_GLOB) if part.stem.split("-")[1].isdigit()]
        self.next_number = max(numbers, default=-1) + 1
        self.pending: dict[int, list[dict]] = {}
        self.finished: list[dict] = []
        self.finished_inputs = 0
        self.written_at = time.monotonic()
        self.rows = self.parts = self.errors = 0

    def add(self, rows: list[dict]) -> int:
        """Takes rows from an actor; returns the pictures of the inputs they finished."""
        pictures = 0
        for row in rows:
            index = row.pop(_INPUT)
            wanted, input_pictures = row.pop(_INPUT_ROWS), row.pop(_INPUT_PICTURES)
            self.pending.setdefault(index, []).append(row)
            if len(self.pending[index]) == wanted:
                finished = self.pending.pop(index)
                self.finished.extend(finished)
                self.finished_inputs += 1
                self.errors += finished[0]["error"] is not None
                pictures += input_pictures
        if self.finished_inputs >= PART_INPUTS or (self.finished and time.monotonic() - self.written_at > PART_SECONDS):
            self.flush()
        return pictures

    def flush(self) -> None:
        if not self.finished:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self.finished, schema=self.schema)
        with atomic_path(self.out / f"part-{self.next_number:05d}.parquet") as tmp:
            pq.write_table(table, tmp)
        self.next_number += 1
        self.rows += len(self.finished)
        self.parts += 1
        self.finished, self.finished_inputs, self.written_at = [], 0, time.monotonic()


def _class_names(model: str | os.PathLike) -> list[str]:
    return load_classifier(model, threads=1).class_names


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
        source: paths (images, videos, folders, ZIP archives, .txt lists of paths) or a list of them.
        out: the folder for the parts; inputs whose rows are already there are skipped.
        settings: the model, detector and prediction options every actor uses.
        address: a Ray cluster to join ("auto", "ray://host:port"); None starts a local Ray for this call and
            stops it after.
        workers: actors (each one CPU). Defaults to the cluster's CPUs (a local Ray: this machine's cores).

    Returns:
        A BatchSummary.

    Raises:
        EmolensError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = _require_ray()
    if workers is not None and workers < 1:
        raise EmolensError(f"workers must be at least 1, not {workers}.")
    began = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = expand_sources(source)
    done = done_sources(out)
    todo = [item for item in items if item.source not in done]  # the `source` their rows carry
    skipped = len(items) - len(todo)
    if not todo:
        return BatchSummary(0, skipped, 0, 0, 0, time.perf_counter() - began, 0.0)
    class_names = _class_names(settings.model)  # also checks the model before any actor starts
    started_here = not ray.is_initialized()
    if started_here:
        _start_ray(ray, address, workers)
    try:
        startup = time.perf_counter() - began
        rows = _predicted_rows(ray, todo, settings, workers)
        writer = _PartWriter(out, class_names)
        try:
            with progress_bar(total=count_pictures(todo, every=settings.every), description="Pictures") as advance:
                for batch in rows.iter_batches(batch_size=None, batch_format="pyarrow"):
                    advance(writer.add(batch.to_pylist()))
        finally:
            writer.flush()  # whole inputs are kept even when the job stops
    finally:
        if started_here:
            ray.shutdown()
    return BatchSummary(len(todo), skipped, writer.rows, writer.parts, writer.errors, time.perf_counter() - began, startup)


def _predicted_rows(ray, todo: list[InputFile | ZipMember | Picture], settings: BatchSettings, workers: int | None):
    """The Ray Dataset of result rows for `todo`: inputs in blocks, predicted by a pool of actors that each
    load the model once (lazy: nothing runs until it is iterated)."""
    # Never more actors than inputs: each one costs a process start and a model load.
    actors = min(len(todo), workers or max(1, int(ray.cluster_resources().get("CPU", 1))))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = context.print_on_execution_start = False  # ours counts pictures
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # set once ray.data has configured its logging
    records = ray.data.from_items([_as_record(index, item) for index, item in enumerate(todo)], override_num_blocks=min(len(todo), 8 * actors))
    return records.map_batches(
        _PredictActor, fn_constructor_args=(settings,), batch_size=INPUTS_PER_CALL, compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1,
        batch_format="numpy", udf_modifying_row_count=True,
    )  # fmt: skip


def _start_ray(ray, address: str | None, workers: int | None) -> None:
    """Joins `address`, or starts a local Ray quietly (no dashboard, workers' logs kept out of the terminal)
    with a CPU for each of `workers`, more than the cores if asked (an actor without a CPU would never start)."""
    options = {
        "include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
        # Each actor's libraries on one thread: they are the parallelism, and more threads only contend.
        "runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}},
    }  # fmt: skip
    if address is None:
        options["num_cpus"] = max(os.cpu_count() or 1, workers or 1)
    else:
        options["address"] = address
    # Ray's C++ core logs each actor's start at error level ("constructor arguments in the object store"), and
    # that level change at start-up, which is silenced (a failed start still raises).
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with native_stderr_silenced():
            ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EmolensError(f"could not reach the Ray cluster at {address}: {error}") from None


__all__ = ["BatchSettings", "BatchSummary", "done_sources", "predict_to_parquet"]
