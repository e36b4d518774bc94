"""Everything `Recognizer.predict` accepts, turned into one stream of decoded pictures.

A source is a path (an image, a video, a folder searched recursively for both, a ZIP archive of images, or a
.txt list file of such paths, one a line), a camera number, encoded bytes, a PIL image, a numpy array, or a list
of any of these. Each becomes `Picture`s: one per image, one per
analysed video frame. An unreadable input becomes a Picture with an `error`, so one bad file never stops a run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from emolens._io import open_regular
from emolens.constants import IMAGE_SUFFIXES
from emolens.data.decode import UndecodableImage
from emolens.data.zip_source import list_zip_members, read_zip_member
from emolens.errors import EmolensError
from emolens.predict.picture import Color, ImageInput, Picture, to_gray
from emolens.predict.video import VIDEO_SUFFIXES, is_video, stated_frame_count, video_frames

Source = Union[ImageInput, int, list, tuple, "InputFile", "ZipMember", Picture]

LIST_SUFFIX = ".txt"
# Bytes in one line of a list file: a path is at most 4,096 bytes on Linux, so a longer line is not a list's.
MAX_LIST_LINE = 64 * 1024


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
            yield Picture(
                f"{path}/{member}", member, None, None, error="videos inside a ZIP archive are not read: unzip it first"
            )


def _listed(path: Path) -> Iterator[InputFile | ZipMember | Picture]:
    """The sources a list file names, one path a line (relative to the list's folder; blank and # lines skipped),
    read a line at a time: a list of millions of paths is never held whole."""
    try:
        file = open_regular(path)
    except OSError as error:
        yield Picture(str(path), path.name, None, None, error=f"not a readable list of paths ({error})")
        return
    # Errors before the first usable path are held back: a .txt whose lines name nothing is most likely not a
    # list at all, and gets one error rather than one per line.
    held: list[Picture] = []
    named, usable = 0, False
    with file:
        for number, line in enumerate(iter(partial(file.readline, MAX_LIST_LINE + 1), b""), start=1):
            try:
                text = line.decode("utf-8").strip()
            except UnicodeDecodeError as error:
                yield Picture(
                    str(path), path.name, None, None, error=f"not a readable list of paths ({error}, line {number})"
                )
                return
            if len(line) > MAX_LIST_LINE:
                yield Picture(
                    str(path),
                    path.name,
                    None,
                    None,
                    error=f"not a list of paths: line {number} is longer than {MAX_LIST_LINE // 1024} KB",
                )
                return
            if not text or text.startswith("#"):
                continue
            named += 1
            for item in _listed_line(path.parent / text, f"line {number} of {path}"):
                if usable or not (isinstance(item, Picture) and item.error):
                    usable = True
                    yield from held
                    held = []
                    yield item
                else:
                    held.append(item)
    if named and not usable:
        yield Picture(
            str(path),
            path.name,
            None,
            None,
            error="not a list of image paths: none of its lines names a file or folder that exists",
        )


def _listed_line(listed: Path, where: str) -> Iterator[InputFile | ZipMember | Picture]:
    """What one line of a list names, its errors saying where the path came from."""
    if listed.suffix.lower() == LIST_SUFFIX:
        yield Picture(
            str(listed), listed.name, None, None, error=f"a list file inside a list file is not read ({where})"
        )
        return
    for item in _files(listed):
        yield replace(item, error=f"{item.error} ({where})") if isinstance(item, Picture) and item.error else item


def _sorted_files(folder: Path, skipped: Path | None) -> Iterator[Path]:
    """The image and video files under `folder` in sorted path order (as `sorted(folder.rglob("*"))` orders
    them), without `skipped`, holding one folder's listing at a time. Links to folders are not followed."""
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except PermissionError:
        return
    for entry in entries:
        path = folder / entry.name
        if entry.is_dir(follow_symlinks=False):
            if path != skipped:
                yield from _sorted_files(path, skipped)
        elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES and entry.is_file():
            yield path


def _files(path: Path, leave_out: Path | None = None) -> Iterator[InputFile | ZipMember | Picture]:
    """A file as given (a ZIP as its images, a list file as what it names), or a folder's images and videos
    (sorted, recursively, without what lies in `leave_out`); a missing path is an error."""
    if path.is_dir():
        root = path.resolve()
        if leave_out is not None and (root == leave_out or leave_out in root.parents):
            raise EmolensError(
                f"{path} is the output folder or inside it: choose an --out outside the folders predicted on (e.g. {path}/annotated)."
            )
        # The output folder inside this one, as the listing names its files (resolved once, not per file).
        skipped = path / leave_out.relative_to(root) if leave_out is not None and root in leave_out.parents else None
        found = False
        for file in _sorted_files(path, skipped):
            found = True
            # resolve(): "." or ".." name no folder, and outputs must stay inside an output folder.
            yield InputFile(file, str(Path(root.name) / file.relative_to(path)))
        if not found:
            yield Picture(str(path), path.name, None, None, error="no images or videos in this folder")
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


# An image not decoded yet: calling it decodes it (on whichever thread calls it).
PendingPicture = Callable[[], Picture]


def iter_pictures(source: Source, *, color: Color | None = None, every: int = 1) -> Iterator[Picture]:
    """Every picture in `source`, in order (see the module's docstring for what a source can be).

    Args:
        source: the input(s).
        color: "rgb" or "bgr", for colour numpy arrays only.
        every: analyse every `every`-th frame of video files (cameras: every frame). Defaults to 1.
    """
    return (item if isinstance(item, Picture) else item() for item in iter_pending(source, color=color, every=every))


def iter_pending(source: Source, *, color: Color | None = None, every: int = 1) -> Iterator[Picture | PendingPicture]:
    """`iter_pictures`, with images and ZIP members left to decode: each a PendingPicture, so that decoding can
    run on a pool of threads. Video frames come decoded (a video is read in order), as do arrays and errors."""
    if every < 1:
        raise EmolensError(f"every must be at least 1 (every frame), not {every}.")
    if isinstance(source, (list, tuple)):
        for item in source:
            yield from iter_pending(item, color=color, every=every)
    elif isinstance(source, bool):
        raise TypeError(f"Expected an image, a path, a camera number or a list of them. Received: {source!r}")
    elif isinstance(source, int):
        yield from video_frames(source, f"camera{source}", every)
    elif isinstance(source, (str, os.PathLike)):
        for item in _files(Path(source)):
            yield from iter_pending(item, color=color, every=every)
    elif isinstance(source, Picture):  # a source `expand_sources` found unusable
        yield source
    elif isinstance(source, ZipMember):
        yield partial(_decoded, source, source.source, source.name, color)
    elif isinstance(source, InputFile):
        if is_video(source.path):
            yield from video_frames(source.path, source.name, every)
        else:
            yield partial(_decoded, source.path, source.source, source.name, color)
    elif isinstance(source, bytes):
        yield partial(_decoded, source, "bytes", "bytes", color)
    elif isinstance(source, Image.Image):
        yield partial(_decoded, source, "image", "image", color)
    elif isinstance(source, np.ndarray):
        gray, image = to_gray(source, color)  # a wrong array is the caller's bug: raised, not kept
        yield Picture("array", "array", gray, image)
    else:
        raise TypeError(
            f"Expected an image, a path, a camera number or a list of them. Received: {type(source).__name__}"
        )


def count_pictures(source: Source, *, every: int = 1) -> int | None:
    """How many pictures `iter_pictures` will give (video frame counts as their containers state them); None
    when unknown (a camera)."""
    if isinstance(source, (list, tuple)):
        counts = [count_pictures(item, every=every) for item in source]
        known = [count for count in counts if count is not None]
        return sum(known) if len(known) == len(counts) else None
    if isinstance(source, int) and not isinstance(source, bool):
        return None
    if isinstance(source, (str, os.PathLike)):
        return sum(count_input_pictures(item, every=every) for item in _files(Path(source)))
    return count_input_pictures(source, every=every)


def count_input_pictures(item: Source, *, every: int = 1) -> int:
    """How many pictures `iter_pictures` will give for one input that is not a list, a path or a camera (as
    `iter_sources` lists them): a video file's stated frames, one in `every`; else one."""
    if isinstance(item, InputFile) and is_video(item.path):
        return max(1, -(-stated_frame_count(item.path) // every))
    return 1


def iter_sources(source: Source, *, leave_out: str | os.PathLike | None = None) -> Iterator:
    """`source` as a flat stream in which every path is replaced by what it holds: its InputFiles, or a Picture
    with an error for a path that cannot be used, listed as it is read (a folder of ten million photos is never
    held whole). Predicting on the items gives what predicting on `source` would.

    Folders are listed without what lies in `leave_out` (an output folder inside them holds annotated copies,
    not photos).

    Raises:
        EmolensError: a folder to list is `leave_out` or inside it.
    """
    if isinstance(source, (list, tuple)):
        for part in source:
            yield from iter_sources(part, leave_out=leave_out)
    elif isinstance(source, (str, os.PathLike)):
        yield from _files(Path(source), None if leave_out is None else Path(leave_out).resolve())
    else:
        yield source


def expand_sources(source: Source, *, leave_out: str | os.PathLike | None = None) -> list:
    """`iter_sources` as a list: counting it walks no folder again (a folder is listed once, not twice, for a
    progress bar's total and the predictions).

    Raises:
        EmolensError: a folder to list is `leave_out` or inside it.
    """
    return list(iter_sources(source, leave_out=leave_out))
