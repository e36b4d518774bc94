"""The output formats of `emolens predict --out DIR --formats NAME,...`: a Result as table rows (`result_rows`,
which the Ray engine's Parquet parts hold too), the `OutputFile` every format subclasses, and the registry of
formats.

Every module of this package is an output format (as `faces_csv.py`, the default): an `OutputFile` subclass that
registers itself with `@register_output_format`, imported the first time the registry is asked
(`emolens._plugins`), so adding a format is adding a file here. Every file is written atomically, so an
interrupted run leaves whole files only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from emolens._io import write_text
from emolens._plugins import import_plugins
from emolens.errors import EmolensError
from emolens.predict.results import Result

DEFAULT_OUTPUT_FORMAT = "csv"

# Output files (faces.csv, ...) are rewritten whole, so during long runs each is rewritten at most this often.
FLUSH_SECONDS = 5.0


def result_rows(result: Result) -> list[dict[str, object]]:
    """`result` as table rows, one per face (per analysed frame in videos); a picture without faces is one row
    whose face columns are None, and an unreadable input one row with its `error`, so no input goes missing.

    The columns: source, name, frame, time, width, height, face (its number as drawn on the annotated picture:
    1..N in a picture, the track id in a video), track_id, x, y, w, h, score, emotion, confidence, one
    probability per class, error; None where a value does not apply.
    """
    picture: dict[str, object] = {
        "source": result.source,
        "name": result.name,
        "frame": result.frame,
        "time": result.time,
    }
    if result.error is not None:
        return [{**picture, "error": result.error}]
    picture |= {"width": result.width, "height": result.height}
    if not result.faces:
        return [picture]
    return [
        {
            **picture,
            "face": number,
            "track_id": face.track_id,
            **dict(zip("xywh", face.box, strict=True)),
            "score": face.score,
            "emotion": face.emotion,
            "confidence": face.confidence,
            **face.probabilities,
        }
        for number, face in zip(result.face_numbers, result.faces, strict=True)
    ]


class OutputFile:
    """A file in the output folder that gathers every Result: held in memory and rewritten whole, atomically,
    every few seconds and on `close`, so an interrupted run keeps nearly all of it.

    A format is a subclass with a `filename`, `add` (one Result into `lines`) and `header`, registered with
    `register_output_format`; `emolens predict --out DIR --formats NAME,...` then writes it.
    """

    filename: str

    def __init__(self, directory: str | os.PathLike, class_names: list[str]) -> None:
        self.path = Path(directory) / self.filename
        self.class_names = class_names
        self.lines: list[str] = []
        self._flushed_at = time.monotonic()

    def header(self) -> list[str]:
        return []

    def add(self, result: Result) -> None:
        raise NotImplementedError

    def write(self, result: Result) -> None:
        self.add(result)
        if time.monotonic() - self._flushed_at > FLUSH_SECONDS:
            self.close()

    def close(self) -> None:
        write_text(self.path, "".join(line + "\n" for line in [*self.header(), *self.lines]))
        self._flushed_at = time.monotonic()


_OUTPUT_FORMATS: dict[str, type[OutputFile]] = {}


def register_output_format(name: str) -> Callable[[type[OutputFile]], type[OutputFile]]:
    """Registers an `OutputFile` subclass as the output format `name`.

    Examples:
        >>> @register_output_format("names")                                   # doctest: +SKIP
        ... class NamesFile(OutputFile):
        ...     filename = "names.txt"
        ...     def add(self, result):
        ...         self.lines.append(result.name)
        >>> output_formats()
        ['csv', 'jsonl']
    """

    def register(cls: type[OutputFile]) -> type[OutputFile]:
        _OUTPUT_FORMATS[name] = cls
        return cls

    return register


def _formats() -> dict[str, type[OutputFile]]:
    import_plugins(__name__)  # every module of this package is a format; importing it registers it
    return _OUTPUT_FORMATS


def output_formats() -> list[str]:
    """The names `OutputFolder(formats=...)` and `--formats` accept.

    Examples:
        >>> "csv" in output_formats()
        True
    """
    return sorted(_formats())


def output_format_classes(names: Iterable[str]) -> list[type[OutputFile]]:
    """The registered `OutputFile` subclasses of the formats `names`, once each, in the order first named.

    Raises:
        EmolensError: a name is not a registered format (all such names are listed).
    """
    names = list(dict.fromkeys(names))
    unknown = [name for name in names if name not in _formats()]
    if unknown:
        raise EmolensError(
            f"formats has unknown format(s) {', '.join(map(repr, unknown))}; choose among {', '.join(output_formats())}."
        )
    return [_OUTPUT_FORMATS[name] for name in names]
