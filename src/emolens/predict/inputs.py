"""The listing and reading behind `Sources`: what a person gives, listed as one stream of inputs, each read as
pictures.

An input is a path (an image, a video, a folder searched recursively for both, a ZIP archive of images, or a
.txt list file of such paths, one a line), a camera number, encoded bytes, a PIL image, a numpy array, or a list
of any of these. `iter_sources` lists them (a folder as its files, a ZIP as its members, a list file as what it
names), and `iter_pending` reads each as `Picture`s: one per image, one per analysed video frame. An unreadable
input becomes a Picture with an `error`, so one bad file never stops a run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeAlias

import numpy as np
from PIL import Image

from emolens._io import open_regular
from emolens.constants import IMAGE_SUFFIXES
from emolens.data.decode import UndecodableImage
from emolens.data.sources.zip_archive import list_zip_members, read_zip_member
from emolens.errors import EmolensError
from emolens.predict.picture import Color, ImageInput, Picture, to_gray
from emolens.predict.video import VIDEO_SUFFIXES, is_video, stated_frame_count, video_frames

# What `Sources` takes (see its docstring): images and paths, camera numbers, and lists of them.
Input = ImageInput | int
Inputs: TypeAlias = Input | Sequence["Inputs"]

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

# One input as `iter_sources` lists it: a file found, a ZIP archive's image, an unusable path (a Picture with its
# error), a camera number, or an image in memory.
Listed = InputFile | ZipMember | Picture | int | bytes | np.ndarray | Image.Image


def iter_pending(item: Listed, *, color: Color | None = None, every: int = 1) -> Iterator[Picture | PendingPicture]:
    """The pictures of one listed input, in order, images and ZIP members left to decode: each a PendingPicture,
    so that decoding can run on a pool of threads. Video frames come decoded (a video is read in order), as do
    arrays and errors; `every` as `Sources` takes it."""
    if isinstance(item, int):
        yield from video_frames(item, f"camera{item}", every)
    elif isinstance(item, Picture):  # a path found unusable
        yield item
    elif isinstance(item, ZipMember):
        yield partial(_decoded, item, item.source, item.name, color)
    elif isinstance(item, InputFile):
        if is_video(item.path):
            yield from video_frames(item.path, item.name, every)
        else:
            yield partial(_decoded, item.path, item.source, item.name, color)
    elif isinstance(item, bytes):
        yield partial(_decoded, item, "bytes", "bytes", color)
    elif isinstance(item, Image.Image):
        yield partial(_decoded, item, "image", "image", color)
    elif isinstance(item, np.ndarray):
        gray, image = to_gray(item, color)  # a wrong array is the caller's bug: raised, not kept
        yield Picture("array", "array", gray, image)
    else:
        raise TypeError(
            f"Expected an image, a path, a camera number or a list of them. Received: {type(item).__name__}"
        )


def iter_pictures(item: Listed, *, color: Color | None = None, every: int = 1) -> Iterator[Picture]:
    """`iter_pending`, each picture decoded."""
    return (
        picture if isinstance(picture, Picture) else picture()
        for picture in iter_pending(item, color=color, every=every)
    )


def count_input_pictures(item: Listed, *, every: int = 1) -> int:
    """How many pictures `iter_pending` gives for one listed input that is not a camera: a video file's frames as
    its container states them, one in `every`; else one."""
    if isinstance(item, InputFile) and is_video(item.path):
        return max(1, -(-stated_frame_count(item.path) // every))
    return 1


def flat_inputs(inputs: Inputs) -> Iterator[Input]:
    """The inputs in `inputs`, its lists (and tuples) opened, in order.

    Raises:
        TypeError: an input is none of the kinds `Inputs` names.
    """
    if isinstance(inputs, (list, tuple)):
        for part in inputs:
            yield from flat_inputs(part)
    elif isinstance(inputs, (str, os.PathLike, bytes, Image.Image, np.ndarray)) or (
        isinstance(inputs, int) and not isinstance(inputs, bool)
    ):
        yield inputs
    else:
        raise TypeError(f"Expected an image, a path, a camera number or a list of them. Received: {inputs!r:.80}")


def iter_sources(source: Inputs, *, leave_out: str | os.PathLike | None = None) -> Iterator[Listed]:
    """`source` as a flat stream in which every path is replaced by what it holds: its InputFiles and ZipMembers,
    or a Picture with an error for a path that cannot be used, listed as it is read (a folder of ten million photos
    is never held whole); other inputs pass as they are.

    Folders are listed without what lies in `leave_out` (an output folder inside them holds annotated copies,
    not photos).

    Raises:
        EmolensError: a folder to list is `leave_out` or inside it.
        TypeError: an input is none of the kinds `Inputs` names.
    """
    skipped = None if leave_out is None else Path(leave_out).resolve()
    for item in flat_inputs(source):
        if isinstance(item, (str, os.PathLike)):
            yield from _files(Path(item), skipped)
        else:
            yield item
