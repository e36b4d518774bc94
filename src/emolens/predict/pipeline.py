"""Predicting over many inputs: image files and folders, videos and cameras, with optional written outputs.

Everything `emolens predict` does lives here, as generators the CLI (or any caller) consumes:
`predict_images` yields one ImageResult per photo (or a Failure for a file that cannot be read), batching the
faces of several photos through the classifier together; `predict_video` yields one per analysed frame.
`OutputWriter` turns those into annotated pictures, an annotated video, a timeline plot and one CSV.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from emolens._io import atomic_path, write_bytes
from emolens._native import native_stderr_silenced
from emolens._progress import track
from emolens.constants import IMAGE_SUFFIXES
from emolens.data.decode import UndecodableImage
from emolens.errors import EmolensError
from emolens.predict.annotate import annotate
from emolens.predict.recognizer import Face, ImageResult, Recognizer, to_gray

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
# Photos decoded and classified together: enough to fill a classifier batch, few enough to keep memory small.
PHOTOS_PER_BATCH = 16
# faces.csv is rewritten whole, so during long runs of photos it is rewritten at most this often.
FLUSH_SECONDS = 5.0
# Video frames held at once (analysed or not), bounding memory whatever --every is.
FRAMES_PER_BATCH = 16


@dataclass(frozen=True)
class Failure:
    """An input that could not be read, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class Input:
    """One input to predict on: its path, and the name its outputs take (relative to the folder given)."""

    path: Path
    name: str

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def expand_sources(sources: Iterable[str | os.PathLike]) -> tuple[list[Input], list[Failure]]:
    """Files as given; folders searched recursively for images and videos (sorted); missing paths are failures."""
    inputs: list[Input] = []
    failures: list[Failure] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                failures.append(Failure(str(path), "no images or videos in this folder"))
            # resolve(): "." or ".." name no folder, and outputs must stay inside --out.
            inputs.extend(Input(p, str(Path(path.resolve().name) / p.relative_to(path))) for p in found)
        elif path.is_file():
            inputs.append(Input(path, path.name))
        else:
            failures.append(Failure(str(path), "no such file or folder"))
    return inputs, failures


def predict_images(recognizer: Recognizer, inputs: Sequence[Input]) -> Iterator[tuple[Input, ImageResult | Failure, np.ndarray | None]]:
    """For each image input: (input, result or failure, the picture as RGB for annotation, or None)."""
    for start in range(0, len(inputs), PHOTOS_PER_BATCH):
        chunk = inputs[start : start + PHOTOS_PER_BATCH]
        decoded: list[tuple[Input, np.ndarray, np.ndarray]] = []
        failed: dict[int, Failure] = {}
        for index, item in enumerate(chunk):
            try:
                gray, rgb = to_gray(item.path)  # files always decode to RGB as well
                decoded.append((item, gray, rgb))
            except (UndecodableImage, OSError) as error:
                failed[index] = Failure(str(item.path), f"not a readable image ({error})")
        faces = iter(recognizer.recognize([gray for _, gray, _ in decoded]))
        pictures = iter(decoded)
        for index, item in enumerate(chunk):
            if index in failed:
                yield item, failed[index], None
                continue
            _, gray, rgb = next(pictures)
            yield item, ImageResult(str(item.path), gray.shape[1], gray.shape[0], next(faces)), rgb


def open_video(source: str | os.PathLike | int) -> cv2.VideoCapture:
    """An opened capture for a video file or a camera index; EmolensError if it cannot be opened."""
    # OpenCV and FFmpeg print their own warnings for a missing camera or a broken file; ours says it in one line.
    with native_stderr_silenced():
        capture = cv2.VideoCapture(source) if isinstance(source, int) else cv2.VideoCapture(str(source))
    if not capture.isOpened():
        capture.release()
        if isinstance(source, int):
            raise EmolensError(f"no camera {source} could be opened: check that one is connected and not in use, or pass another --camera number.")
        raise UndecodableImage("not a readable video")
    return capture


def frame_rate(capture: cv2.VideoCapture) -> float:
    """The capture's frames per second; 30 when it reports none (cameras and some containers report 0)."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    return fps if 0 < fps < 1000 else 30.0


def predict_video(
    recognizer: Recognizer, capture: cv2.VideoCapture, source: str, *, every: int = 1, live: bool = False
) -> Iterator[tuple[np.ndarray, ImageResult | None]]:
    """Every frame of a video as (BGR frame, result); result is None for frames skipped by `every`.

    A file's analysed frames are classified FRAMES_PER_BATCH at a time and timed by their index; a `live`
    camera's one at a time, timed by the clock, since it delivers frames only as fast as they are analysed.
    """
    if every < 1:
        raise EmolensError(f"--every must be at least 1, not {every}.")
    fps = frame_rate(capture)
    frames_per_batch = 1 if live else FRAMES_PER_BATCH
    started = time.monotonic()
    index = 0
    while True:
        frames: list[tuple[int, np.ndarray]] = []
        while len(frames) < frames_per_batch:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append((index, frame))
            index += 1
        if not frames:
            return
        analysed = [(i, frame) for i, frame in frames if i % every == 0]
        results = recognizer.recognize([cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for _, frame in analysed])
        now = round(time.monotonic() - started, 3)
        by_frame = {
            i: ImageResult(source, frame.shape[1], frame.shape[0], faces, frame=i, time=now if live else round(i / fps, 3))
            for (i, frame), faces in zip(analysed, results)
        }
        for i, frame in frames:
            yield frame, by_frame.get(i)
        if len(frames) < frames_per_batch:
            return


class OutputWriter:
    """Writes what `--out DIR` promises: annotated pictures and videos, video timelines, and faces.csv.

    The CSV has one row per face (per analysed frame for videos); it is rewritten atomically after each video,
    every few seconds during a run of photos, and by `flush()` at the end, so an interrupted run keeps
    nearly all its rows.
    """

    def __init__(self, out_dir: str | os.PathLike, class_names: Sequence[str]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.class_names = list(class_names)
        self.rows: list[list[object]] = []
        self.used_names: set[str] = set()
        self._flushed_at = time.monotonic()

    def annotated_path(self, name: str, suffix: str) -> Path:
        """`<name stem>.annotated<suffix>` under the output folder; a name already used gets -2, -3, ... added."""
        path = self.out_dir / name
        candidate, number = path.with_name(f"{path.stem}.annotated{suffix}"), 1
        while str(candidate) in self.used_names:
            number += 1
            candidate = path.with_name(f"{path.stem}-{number}.annotated{suffix}")
        self.used_names.add(str(candidate))
        return candidate

    def add_rows(self, result: ImageResult) -> None:
        for number, face in enumerate(result.faces):
            self.rows.append(
                [result.source, "" if result.frame is None else result.frame, "" if result.time is None else result.time, number, *face.box,
                 face.emotion, f"{face.confidence:.4f}", *(f"{face.probabilities[name]:.4f}" for name in self.class_names)]
            )

    def write_image(self, item: Input, result: ImageResult, rgb: np.ndarray) -> Path:
        """The annotated picture (JPEG for JPEG inputs, PNG otherwise); returns its path."""
        suffix = ".jpg" if item.path.suffix.lower() in (".jpg", ".jpeg") else ".png"
        path = self.annotated_path(item.name, suffix)
        picture = annotate(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), result.faces, self.class_names)
        ok, encoded = cv2.imencode(suffix, picture)
        if not ok:
            raise EmolensError(f"could not encode the annotated picture for {item.path}.")
        write_bytes(path, encoded.tobytes())
        self.add_rows(result)
        if time.monotonic() - self._flushed_at > FLUSH_SECONDS:
            self.flush()
        return path

    def flush(self) -> None:
        header = ["source", "frame", "time", "face", "x", "y", "w", "h", "emotion", "confidence", *self.class_names]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows(self.rows)
        with atomic_path(self.out_dir / "faces.csv") as tmp:
            tmp.write_text(buffer.getvalue(), encoding="utf-8")
        self._flushed_at = time.monotonic()


class VideoOutput:
    """Collects one video's annotated frames (each with the latest analysed faces drawn) and its timeline."""

    def __init__(self, writer: OutputWriter, video: cv2.VideoWriter) -> None:
        self.writer, self.video = writer, video
        self.faces: list[Face] = []
        self.times: list[float] = []
        self.means: list[np.ndarray] = []

    def add(self, frame: np.ndarray, result: ImageResult | None) -> None:
        names = self.writer.class_names
        if result is not None:
            self.faces = result.faces
            self.writer.add_rows(result)
            self.times.append(result.time or 0.0)
            probabilities = [[face.probabilities[name] for name in names] for face in result.faces]
            self.means.append(np.mean(probabilities, axis=0) if probabilities else np.full(len(names), np.nan))
        self.video.write(annotate(frame, self.faces, names))


@contextmanager
def video_output(writer: OutputWriter, name: str, fps: float, size: tuple[int, int], *, title: str) -> Iterator[VideoOutput]:
    """An annotated `<name>.annotated.mp4` and a `<name>.timeline.png` in the writer's folder, both kept only
    if the block finishes (a stopped camera counts as finished: the caller catches the interrupt)."""
    from emolens.plots import plot_emotion_timeline  # matplotlib only when a video is written

    path = writer.annotated_path(name, ".mp4")
    with atomic_path(path) as tmp:
        video = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not video.isOpened():
            raise EmolensError(f"could not write {path} (OpenCV has no MPEG-4 writer for {size[0]}x{size[1]} at {fps:g} fps here).")
        output = VideoOutput(writer, video)
        try:
            yield output
        finally:
            output.video.release()
    writer.flush()
    names = writer.class_names
    means = np.array(output.means) if output.means else np.zeros((0, len(names)))
    timeline = path.with_name(path.name.replace(".annotated.mp4", ".timeline.png"))
    plot_emotion_timeline(np.array(output.times), means, names, timeline, title=title)


@dataclass
class VideoSummary:
    """What one video or camera session showed: frames analysed, frames with faces, faces per emotion."""

    source: str
    analysed: int = 0
    with_faces: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, result: ImageResult) -> None:
        self.analysed += 1
        self.with_faces += bool(result.faces)
        for face in result.faces:
            self.counts[face.emotion] = self.counts.get(face.emotion, 0) + 1

    def most_seen(self, k: int = 3) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda item: -item[1])[:k]


def analyse_video(
    recognizer: Recognizer,
    source: Path | int,
    name: str,
    *,
    every: int = 1,
    writer: OutputWriter | None = None,
    on_result: Callable[[ImageResult], None] | None = None,
) -> VideoSummary:
    """Runs a video file, or camera number `source`, through the recognizer; writes its outputs to `writer`.

    A camera is read one frame at a time, until it ends or the user presses Ctrl-C, which finishes the session
    normally (outputs written); a video file is read in batches of frames, and Ctrl-C stops the whole run.

    Raises:
        UndecodableImage: a video file that cannot be opened.
        EmolensError: a camera that cannot be opened.
    """
    camera = isinstance(source, int)
    capture = open_video(source)
    summary = VideoSummary(str(source))
    try:
        fps = frame_rate(capture)
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        total = None if camera else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        frames = predict_video(recognizer, capture, str(source), every=every, live=camera)
        with ExitStack() as stack:
            output = stack.enter_context(video_output(writer, name, fps, size, title=str(source))) if writer else None
            try:
                for frame, result in track(frames, total=total, description=name):
                    if output is not None:
                        output.add(frame, result)
                    if result is not None:
                        summary.add(result)
                        if on_result is not None:
                            on_result(result)
            except KeyboardInterrupt:
                if not camera:
                    raise
                logger.info("Camera %d stopped.", source)
    finally:
        capture.release()
    return summary
