"""`Sources`: a run's inputs, listed once and counted before they are read, as `Recognizer.predict` takes them.

The listing itself (folders walked in sorted order a folder at a time, ZIP archives, .txt lists read a line at a
time) and the reading of each input are `inputs.py`'s; a Sources keeps that listing when it is counted, so that
a progress bar's total and the predictions come from one walk of each folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from emolens.errors import EmolensError
from emolens.predict.inputs import (
    InputFile,
    Inputs,
    Listed,
    PendingPicture,
    count_input_pictures,
    flat_inputs,
    iter_pending,
    iter_sources,
)
from emolens.predict.picture import Color, Picture


class Sources:
    """A run's inputs as `Recognizer.predict` takes them: listed once, and counted before they are read.

    Folders are walked, and .txt lists read, as their pictures are reached, so that a folder of ten million
    photos is never held whole, unless the Sources is counted: `count()` lists every input and keeps the
    listing, and the pictures then read come from it, so that no folder is walked twice (a progress bar's total
    and the predictions come from one listing). A Sources never counted lists its inputs again each time it is
    read.

    Args:
        inputs: an image, video or folder path (folders are searched recursively; a ZIP archive gives its images
            and a .txt file the paths it lists, one a line), a camera number, encoded bytes, a PIL image, a uint8
            numpy array, or a list (or tuple) of these.
        every: analyse every `every`-th frame of video files (cameras: every frame). Defaults to 1.
        leave_out: a folder left out of the folders listed (an output folder inside them, which holds an earlier
            run's annotated copies); a folder given that is it or lies inside it is refused, when listed.
        written: files the run will write (`--out`'s faces.csv, ...): an input that is one of them is refused,
            when listed, rather than overwritten.

    Raises:
        TypeError: an input is none of the kinds above.
        EmolensError: `every` is below 1.

    Examples:
        >>> from emolens.predict import Recognizer
        >>> sources = Sources(["samples/", "samples/astronaut.png"])
        >>> sources.count()                 # lists the folder, once
        2
        >>> [result.name for result in Recognizer().predict(sources)]
        ['samples/astronaut.png', 'astronaut.png']
    """

    def __init__(
        self,
        inputs: Inputs,
        *,
        every: int = 1,
        leave_out: str | os.PathLike | None = None,
        written: Iterable[str | os.PathLike] = (),
    ) -> None:
        if every < 1:
            raise EmolensError(f"every must be at least 1 (every frame), not {every}.")
        self.every = every
        self._inputs = tuple(flat_inputs(inputs))
        self._leave_out = leave_out
        self._written = {Path(path).resolve(): Path(path) for path in written}
        self._listing: list[Listed] | None = None
        self._count: int | None = None

    def count(self) -> int | None:
        """How many pictures the inputs give: one per image, a video file's frames as its container states them
        (one in `every`), and None when a camera is among them. The first call lists every input and keeps the
        listing (see above); later calls repeat its answer.

        Raises:
            EmolensError: a folder to list is `leave_out` or lies inside it, or an input is a `written` file.
        """
        if self._listing is None:
            listing = list(self._walk())
            cameras = any(isinstance(item, int) for item in listing)
            self._count = None if cameras else sum(count_input_pictures(item, every=self.every) for item in listing)
            self._listing = listing
        return self._count

    def pictures(self, *, color: Color | None = None) -> Iterator[Picture]:
        """Every picture, decoded, in order: one per image and per analysed video frame; an input that cannot be
        read is a Picture with an `error`. `Recognizer.predict_pictures` takes them (behind a progress bar, say).

        Args:
            color: "rgb" or "bgr", for colour numpy arrays only.
        """
        for picture in pending_pictures(self, color=color):
            yield picture if isinstance(picture, Picture) else picture()

    def _listed(self) -> Iterator[Listed]:
        return iter(self._listing) if self._listing is not None else self._walk()

    def _walk(self) -> Iterator[Listed]:
        """The inputs listed afresh, every path as what it holds, each `written` file refused."""
        names = {path.name for path in self._written.values()}
        for item in iter_sources(self._inputs, leave_out=self._leave_out):
            # A file's name is compared first: resolving every file of a folder would cost a call each.
            if isinstance(item, InputFile) and item.path.name in names and item.path.resolve() in self._written:
                written = self._written[item.path.resolve()]
                raise EmolensError(
                    f"{item.path} is an input, and --out {written.parent} would write its {written.name} over it: choose another --out."
                )
            yield item

    def __repr__(self) -> str:
        listed = "" if self._listing is None else f", listed: {len(self._listing)}"
        return f"Sources({len(self._inputs)} input(s), every={self.every}{listed})"


# What `Recognizer.predict` takes: a Sources, or the inputs one is made of.
Source = Inputs | Sources


def as_sources(source: Source, every: int | None = None, *, default_every: int = 1) -> Sources:
    """`source` as a Sources, analysing one video frame in `every` (None: a Sources' own, else `default_every`).

    Raises:
        EmolensError: `every` is below 1, or differs from the `every` of the Sources given.
        TypeError: an input is none of the kinds a Sources takes.
    """
    if not isinstance(source, Sources):
        return Sources(source, every=default_every if every is None else every)
    if every is not None and every != source.every:
        raise EmolensError(
            f"every={every}, but the Sources given analyses every={source.every}: leave every out, "
            f"or make the Sources with every={every}."
        )
    return source


def listed_inputs(sources: Sources) -> Iterator[Listed]:
    """The inputs of `sources` as listed: its kept listing once counted, else listed as they are read."""
    return sources._listed()


def pending_pictures(sources: Sources, *, color: Color | None = None) -> Iterator[Picture | PendingPicture]:
    """`Sources.pictures` with images and ZIP members left to decode (`inputs.iter_pending`), for a pool of
    threads to decode side by side."""
    for item in listed_inputs(sources):
        yield from iter_pending(item, color=color, every=sources.every)


__all__ = ["Source", "Sources"]
