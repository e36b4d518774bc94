"""Your own faces as a dataset: `emolens data faces PHOTOS_OR_VIDEOS --out DIR`.

Runs the Recognizer as `predict` does (the same detector, FER2013 framing and crops), keeping each face's 48x48
gray crop (`keep_crops`), and writes each crop: into DIR/unlabelled/ for a person to sort into DIR/train/<emotion>/ folders, or (with
pre_label) straight into DIR/train/<the bundled model's guess>/ for a person to correct. DIR/faces.csv says
where each crop came from. Sorted, DIR is an emolens dataset: `emolens train DIR --recipe finetune`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from emolens._io import spreadsheet_safe, write_bytes, write_text
from emolens.constants import IMAGE_SIZE
from emolens.errors import EmolensError
from emolens.models.classifier import DEFAULT_MODEL
from emolens.predict.detectors import DEFAULT_DETECTOR_CONFIG, DetectorConfig
from emolens.predict.picture import Picture
from emolens.predict.recognizer import Recognizer
from emolens.predict.results import Result
from emolens.predict.sources import Source, as_sources

logger = logging.getLogger(__name__)

UNLABELLED = "unlabelled"
# Neighbouring frames of a video hold nearly the same face: one in EVERY is taken unless asked otherwise.
EVERY = 10
CSV_COLUMNS = ("file", "source", "frame", "face", "x", "y", "w", "h", "score", "guess", "confidence")


@dataclass
class CollectedFaces:
    """What `collect_faces` wrote: how many faces from how many pictures, by folder, and what it skipped.

    Examples:
        >>> summary = collect_faces(["samples/"], "my_faces")       # doctest: +SKIP
        >>> summary.pictures, summary.faces, dict(summary.by_folder)  # doctest: +SKIP
        (1, 1, {'unlabelled': 1})
    """

    out: Path
    pictures: int = 0
    faces: int = 0
    by_folder: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)


def _stem(result: Result) -> str:
    """A file-name-safe stem for a picture's crops: its name without folders or suffix, and its frame."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(result.name or result.source).stem) or "image"
    return f"{stem}-{result.frame:06d}" if result.frame is not None else stem


def collect_faces(
    sources: Source,
    out: str | os.PathLike,
    *,
    detector: DetectorConfig | str = DEFAULT_DETECTOR_CONFIG,
    pre_label: bool = False,
    model: str | os.PathLike = DEFAULT_MODEL,
    every: int | None = None,
    pictures: Iterable[Picture] | None = None,
) -> CollectedFaces:
    """Writes every face found in `sources` as a 48x48 crop under `out` (see the module's docstring).

    Args:
        sources: images, folders, videos, ZIPs or lists, or a `Sources`, as `predict` takes them.
        out: the dataset folder to make; it must not hold a faces.csv already.
        detector: a DetectorConfig or a detector name. Defaults to the bundled YuNet.
        pre_label: file each face under train/<guess> by `model`'s answer, instead of unlabelled/.
        model: the model whose guesses pre-label. Defaults to the bundled one.
        every: in videos, take every `every`-th frame (neighbouring frames hold nearly the same face). Defaults to
            10; a Sources' own `every`, which this may repeat but not change.
        pictures: the pictures of `sources` (`Sources.pictures`) wrapped by the caller (the CLI's progress bar);
            None reads them here.

    Returns:
        A CollectedFaces summary.

    Examples:
        >>> summary = collect_faces(["holiday/", "party.mp4"], "my_faces", pre_label=True)   # doctest: +SKIP
        >>> summary.faces, dict(summary.by_folder)                                          # doctest: +SKIP
        (37, {'train/happy': 21, 'train/neutral': 9, 'train/surprise': 7})
    """
    out = Path(out)
    if (out / "faces.csv").exists():
        raise EmolensError(f"{out} already holds collected faces (faces.csv): choose a new output folder.")
    sources = as_sources(sources, every, default_every=EVERY)
    # Without pre_label the guesses go unused: the bundled model then classifies, whatever `model` names.
    recognizer = Recognizer(model if pre_label else DEFAULT_MODEL, detector=detector, keep_crops=True)
    if recognizer.classifier.input_size != IMAGE_SIZE:
        raise EmolensError(
            f"{model} takes {recognizer.classifier.input_size}-pixel faces; faces are collected at {IMAGE_SIZE}."
        )
    out.mkdir(parents=True, exist_ok=True)
    crops = _CropWriter(out, pre_label)
    if pictures is None:
        results = recognizer.predict(sources, stream=True, errors="keep")
    else:
        results = recognizer.predict_pictures(pictures, errors="keep")
    try:
        for result in results:
            if result.error is not None:  # unreadable: its error says why
                crops.summary.skipped.append(f"{result.source}: {result.error}")
            else:
                crops.add(result)
    finally:
        recognizer.pool.close()
    write_text(out / "faces.csv", _csv(crops.rows))
    logger.debug("Collected %d faces from %d pictures into %s", crops.summary.faces, crops.summary.pictures, out)
    return crops.summary


class _CropWriter:
    """Writes each picture's face crops under their folder (unlabelled/, or with `pre_label` train/<guess>),
    with unique names, and keeps the faces.csv row of each."""

    def __init__(self, out: Path, pre_label: bool) -> None:
        self.out, self.pre_label = out, pre_label
        self.summary = CollectedFaces(out)
        self.rows: list[dict[str, object]] = []
        self.used: set[str] = set()

    def add(self, result: Result) -> None:
        self.summary.pictures += 1
        for k, face in enumerate(result.faces):  # faces numbered from 1, as predict draws and writes them
            guess = face.emotion if self.pre_label else None
            folder = UNLABELLED if guess is None else f"train/{guess}"
            name = _unique(f"{folder}/{_stem(result)}-face{k + 1}", self.used)
            assert face.crop is not None  # the Recognizer keeps crops
            ok, encoded = cv2.imencode(".png", face.crop)
            if not ok:
                raise EmolensError(f"could not encode a face from {result.source}.")
            write_bytes(self.out / name, encoded.tobytes())
            self.summary.faces += 1
            self.summary.by_folder[folder] += 1
            x, y, w, h = face.box
            self.rows.append(
                {
                    "file": name,
                    "source": result.source,
                    "frame": result.frame,
                    "face": k + 1,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "score": face.score,
                    "guess": guess,
                    "confidence": face.confidence if self.pre_label else None,
                }
            )


def _unique(stem: str, used: set[str]) -> str:
    name, number = f"{stem}.png", 1
    while name in used:
        number += 1
        name = f"{stem}-{number}.png"
    used.add(name)
    return name


def _csv(rows: list[dict[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {key: "" if value is None else spreadsheet_safe(value) for key, value in row.items()} for row in rows
    )
    return buffer.getvalue()
