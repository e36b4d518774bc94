"""Everything `Recognizer.predict` accepts, turned into one stream of decoded pictures.

A source is a path (an image, a video, a folder searched recursively for both, a ZIP archive of images, or a
.txt list file of such paths, one a line), a camera number, encoded bytes, a PIL image, a numpy array, or a list
of any of these. Each becomes `Picture`s: one per image, one per
analysed video frame. An unreadable input becomes a Picture with an `error`, so one bad file never stops a run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import cv2
import numpy as np
from PIL import Image

from emolens._io import read_file
from emolens._native import native_stderr_silenced
from emolens.constants import IMAGE_SUFFIXES
from emolens.data.decode import MAX_PIXELS, ImageTooLarge, UndecodableImage, decode_photo, pil_to_rgb
from emolens.data.preprocess import gray_from_rgb
from emolens.data.zip_source import list_zip_members, read_zip_member
from emolens.errors import EmolensError

ImageInput = Union[str, os.PathLike, bytes, np.ndarray, Image.Image]
Source = Union[ImageInput, int, list, tuple, "InputFile", "ZipMember", "Picture"]
Color = Literal["rgb", "bgr"]

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
LIST_SUFFIX = ".txt"


@dataclass(frozen=True)
class Picture:
    """One decoded picture to find faces in: gray for the detector, the picture itself (RGB or gray) to draw on.

    Video frames carry their index and time, the rate of analysed frames (for writing them as a video) and
    `live` for cameras, which deliver frames only as fast as they are analysed.
    """

    source: str
    name: str
    gray: np.ndarray | None
    image: np.ndarray | None
    decode_ms: float = 0.0
    frame: int | None = None
    time: float | None = None
    fps: float | None = None
    live: bool = False
    error: str | None = None


def to_gray(image: ImageInput, color: Color | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One image input -> (gray (H, W) uint8, the picture: RGB (H, W, 3) uint8, or the gray one for gray input).

    Files and bytes are decoded with the same mode handling as training data (EXIF rotation, 16-bit, CMYK,
    transparency). A 3- or 4-channel numpy array needs `color` ("rgb" or "bgr"): OpenCV gives BGR, most others RGB,
    and guessing wrong silently changes the gray levels.

    Raises:
        UndecodableImage: the file or bytes are not a readable image.
        OSError: the file cannot be read (missing, not a regular file, above `emolens._io.MAX_FILE_BYTES`).
    """
    if isinstance(image, (str, os.PathLike)):
        image = read_file(image)
    if isinstance(image, (bytes, Image.Image)):
        rgb = decode_photo(image) if isinstance(image, bytes) else pil_to_rgb(image)
        return gray_from_rgb(rgb), rgb
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"Expected a uint8 image array. Received: dtype={array.dtype}")
    if array.ndim == 2:
        return array, array
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"Expected an image array of shape (H, W), (H, W, 3) or (H, W, 4). Received: shape={array.shape}")
    if color not in ("rgb", "bgr"):
        raise ValueError("A colour image array needs color='rgb' or color='bgr' (OpenCV arrays are BGR).")
    rgb = np.ascontiguousarray(array[..., :3] if color == "rgb" else array[..., 2::-1])
    return gray_from_rgb(rgb), rgb


@dataclass(frozen=True)
class InputFile:
    """An image or video file found in a source, with the name its outputs take: relative to the folder given,
    under that folder's own name."""

    path: Path
    name: str

    @property
    def source(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class ZipMember:
    """An image inside a ZIP archive; its source reads `archive.zip/member`, its outputs take the archive's stem
    as their folder."""

    path: Path
    member: str
    name: str

    @property
    def source(self) -> str:
        return f"{self.path}/{self.member}"


def _zip_members(path: Path) -> Iterator[ZipMember | Picture]:
    """A ZIP archive's images (in archive order); its videos and unsafe or oversized members as errors."""
    try:
        members, skipped = list_zip_members(path)
    except EmolensError:
        yield Picture(str(path), path.name, None, None, error="not a readable ZIP archive")
        return
    for bad in skipped:
        yield Picture(f"{path}/{bad.name}", bad.name, None, None, error=bad.reason)
    for member in members:
        suffix = Path(member).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            yield ZipMember(path, member, f"{path.stem}/{member}")
        elif suffix in VIDEO_SUFFIXES:
            yield Picture(f"{path}/{member}", member, None, None, error="videos inside a ZIP archive are not read: unzip it first")


def _listed(path: Path) -> Iterator[InputFile | ZipMember | Picture]:
    """The sources a list file names, one path a line (relative to the list's folder; blank and # lines skipped)."""
    try:
        text = read_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        yield Picture(str(path), path.name, None, None, error=f"not a readable list of paths ({error})")
        return
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            listed = path.parent / line
            if listed.suffix.lower() == LIST_SUFFIX:
                yield Picture(str(listed), listed.name, None, None, error="a list file inside a list file is not read")
            else:
                yield from _files(listed)


def _files(path: Path, leave_out: Path | None = None) -> Iterator[InputFile | ZipMember | Picture]:
    """A file as given (a ZIP as its images, a list file as what it names), or a folder's images and videos
    (sorted, recursively, without what lies in `leave_out`); a missing path is an error."""
    if path.is_dir():
        if leave_out is not None and _within(path, leave_out):
            raise EmolensError(f"{path} is the output folder or inside it: choose an --out outside the folders predicted on (e.g. {path}/annotated).")
        found = sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES and not (leave_out and _within(p, leave_out))
        )  # fmt: skip
        if not found:
            yield Picture(str(path), path.name, None, None, error="no images or videos in this folder")
        # resolve(): "." or ".." name no folder, and outputs must stay inside an output folder.
        yield from (InputFile(p, str(Path(path.resolve().name) / p.relative_to(path))) for p in found)
    elif path.is_file() and path.suffix.lower() == ".zip":
        yield from _zip_members(path)
    elif path.is_file() and path.suffix.lower() == LIST_SUFFIX:
        yield from _listed(path)
    elif path.is_file():
        yield InputFile(path, path.name)
    elif path.exists():
        yield Picture(str(path), path.name, None, None, error="not a regular file (a FIFO, device or socket)")
    else:
        yield Picture(str(path), path.name, None, None, error="no such file or folder")


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_video(source: str | os.PathLike | int) -> cv2.VideoCapture:
    """An opened capture for a video file or a camera index.

    Raises:
        EmolensError: a camera that cannot be opened.
        UndecodableImage: a video file that cannot be opened.
    """
    # OpenCV and FFmpeg print their own warnings for a missing camera or a broken file; ours says it in one line.
    with native_stderr_silenced():
        capture = cv2.VideoCapture(source) if isinstance(source, int) else cv2.VideoCapture(str(source))
    if not capture.isOpened():
        capture.release()
        if isinstance(source, int):
            raise EmolensError(f"no camera {source} could be opened: check that one is connected and not in use, or choose another camera number.")
        raise UndecodableImage("not a readable video")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width * height > MAX_PIXELS:
        # The cap photos have: FFmpeg decodes whatever a file holds (a huge PNG named .mp4 is a one-frame video).
        capture.release()
        raise ImageTooLarge(f"video frames are {width}x{height}, above {MAX_PIXELS:,} pixels")
    return capture


NO_FRAMES = "no frame of the video could be decoded"


def frame_rate(capture: cv2.VideoCapture) -> float:
    """The capture's frames per second; 30 when it reports none (cameras and some containers report 0)."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    return fps if 0 < fps < 1000 else 30.0


def _frame_time(capture: cv2.VideoCapture, index: int, fps: float) -> float:
    """The seconds at which the frame just grabbed is shown: its timestamp, which variable-frame-rate videos
    (phones) need (index / fps put frame 4 of one at 1.65 s instead of 2.0 s); index / fps where the container
    gives none."""
    milliseconds = capture.get(cv2.CAP_PROP_POS_MSEC)
    return milliseconds / 1000 if milliseconds > 0 or index == 0 else index / fps


def _video_frames(source: str | os.PathLike | int, name: str, every: int) -> Iterator[Picture]:
    """Every `every`-th frame of a video file, or every frame of a camera until it ends or Ctrl-C stops it."""
    live = isinstance(source, int)
    try:
        capture = open_video(source)
    except UndecodableImage as error:
        yield Picture(str(source), name, None, None, error=str(error))
        return
    try:
        fps = frame_rate(capture)
        started = time.monotonic()
        index = 0
        began = time.perf_counter()
        while capture.grab():
            if live or index % every == 0:
                ok, bgr = capture.retrieve()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                gray = gray_from_rgb(rgb)
                seconds = time.monotonic() - started if live else _frame_time(capture, index, fps)
                decode_ms = (time.perf_counter() - began) * 1000
                yield Picture(str(source), name, gray, rgb, decode_ms, frame=index, time=round(seconds, 3), fps=fps if live else fps / every, live=live)
            index += 1
            began = time.perf_counter()
        if index == 0 and not live:  # a file that opened but holds no decodable frame: say so in its row
            yield Picture(str(source), name, None, None, error=NO_FRAMES)
    except KeyboardInterrupt:
        if not live:
            raise
        # Ctrl-C ends a camera session normally: what was analysed is kept and written.
    finally:
        capture.release()


def _decoded(item: ImageInput | ZipMember, source: str, name: str, color: Color | None) -> Picture:
    began = time.perf_counter()
    try:
        if isinstance(item, ZipMember):
            item = read_zip_member(item.path, item.member)
        gray, image = to_gray(item, color)
    except OSError as error:
        return Picture(source, name, None, None, error=f"not read ({error.strerror or error})")
    except UndecodableImage as error:
        return Picture(source, name, None, None, error=f"not a readable image ({error})")
    return Picture(source, name, gray, image, (time.perf_counter() - began) * 1000)


def iter_pictures(source: Source, *, color: Color | None = None, every: int = 1) -> Iterator[Picture]:
    """Every picture in `source`, in order (see the module's docstring for what a source can be).

    Args:
        source: the input(s).
        color: "rgb" or "bgr", for colour numpy arrays only.
        every: analyse every `every`-th frame of video files (cameras: every frame). Defaults to 1.
    """
    if every < 1:
        raise EmolensError(f"every must be at least 1 (every frame), not {every}.")
    if isinstance(source, (list, tuple)):
        for item in source:
            yield from iter_pictures(item, color=color, every=every)
    elif isinstance(source, bool):
        raise TypeError(f"Expected an image, a path, a camera number or a list of them. Received: {source!r}")
    elif isinstance(source, int):
        yield from _video_frames(source, f"camera{source}", every)
    elif isinstance(source, (str, os.PathLike)):
        for item in _files(Path(source)):
            yield from iter_pictures(item, color=color, every=every)
    elif isinstance(source, Picture):  # a source `expand_sources` found unusable
        yield source
    elif isinstance(source, ZipMember):
        yield _decoded(source, source.source, source.name, color)
    elif isinstance(source, InputFile):
        if is_video(source.path):
            yield from _video_frames(source.path, source.name, every)
        else:
            yield _decoded(source.path, source.source, source.name, color)
    elif isinstance(source, bytes):
        yield _decoded(source, "bytes", "bytes", color)
    elif isinstance(source, Image.Image):
        yield _decoded(source, "image", "image", color)
    elif isinstance(source, np.ndarray):
        gray, image = to_gray(source, color)  # a wrong array is the caller's bug: raised, not kept
        yield Picture("array", "array", gray, image)
    else:
        raise TypeError(f"Expected an image, a path, a camera number or a list of them. Received: {type(source).__name__}")


def count_pictures(source: Source, *, every: int = 1) -> int | None:
    """How many pictures `iter_pictures` will give (video frame counts as their containers state them); None
    when unknown (a camera)."""
    if isinstance(source, (list, tuple)):
        counts = [count_pictures(item, every=every) for item in source]
        return None if None in counts else sum(counts)
    if isinstance(source, int) and not isinstance(source, bool):
        return None
    if isinstance(source, (str, os.PathLike)):
        return sum(count_pictures(item, every=every) for item in _files(Path(source)))
    if isinstance(source, InputFile) and is_video(source.path):
        with native_stderr_silenced():
            capture = cv2.VideoCapture(str(source.path))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        capture.release()
        return max(1, -(-frames // every))
    return 1


def expand_sources(source: Source, *, leave_out: str | os.PathLike | None = None) -> list:
    """`source` as a flat list in which every path is replaced by what it holds: its InputFiles, or a Picture
    with an error for a path that cannot be used. Predicting on the list gives what predicting on `source`
    would, and counting it walks no folder again (a folder of a million images is listed once, not twice).

    Folders are listed without what lies in `leave_out` (an output folder inside them holds annotated copies,
    not photos).

    Raises:
        EmolensError: a folder to list is `leave_out` or inside it.
    """
    if isinstance(source, (list, tuple)):
        return [item for part in source for item in expand_sources(part, leave_out=leave_out)]
    if isinstance(source, (str, os.PathLike)):
        return list(_files(Path(source), None if leave_out is None else Path(leave_out).resolve()))
    return [source]


def _within(path: Path, folder: Path) -> bool:
    resolved = path.resolve()
    return resolved == folder or folder in resolved.parents

