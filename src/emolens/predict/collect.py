"""Your own faces as a dataset: `emolens data faces PHOTOS_OR_VIDEOS --out DIR`.

Finds faces with the same detector and FER2013 framing as `predict`, and writes each as the 48x48 gray crop the
classifier would see: into DIR/unlabelled/ for a person to sort into DIR/train/<emotion>/ folders, or (with
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
import numpy as np

from emolens._io import spreadsheet_safe, write_bytes, write_text
from emolens.constants import IMAGE_SIZE
from emolens.errors import EmolensError
from emolens.models.classifier import DEFAULT_MODEL, load_classifier
from emolens.predict.detectors import DEFAULT_DETECTOR_CONFIG, Detections, DetectorConfig, crop_faces
from emolens.predict.inputs import Source, iter_pictures
from emolens.predict.picture import Picture

logger = logging.getLogger(__name__)

UNLABELLED = "unlabelled"
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


def _stem(picture: Picture) -> str:
    """A file-name-safe stem for a picture's crops: its name without folders or suffix, and its frame."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(picture.name or picture.source).stem) or "image"
    return f"{stem}-{picture.frame:06d}" if picture.frame is not None else stem


def collect_faces(
    sources: Source,
    out: str | os.PathLike,
    *,
    detector: DetectorConfig | str = DEFAULT_DETECTOR_CONFIG,
    pre_label: bool = False,
    model: str | os.PathLike = DEFAULT_MODEL,
    every: int = 10,
    pictures: Iterable[Picture] | None = None,
) -> CollectedFaces:
    """Writes every face found in `sources` as a 48x48 crop under `out` (see the module's docstring).

    Args:
        sources: images, folders, videos, ZIPs or lists, as `predict` takes them.
        out: the dataset folder to make; it must not hold a faces.csv already.
        detector: a DetectorConfig or a detector name. Defaults to the bundled YuNet.
        pre_label: file each face under train/<guess> by `model`'s answer, instead of unlabelled/.
        model: the model whose guesses pre-label. Defaults to the bundled one.
        every: in videos, take every `every`-th frame (neighbouring frames hold nearly the same face). Defaults to 10.
        pictures: `iter_pictures(sources, every=every)` wrapped by the caller (the CLI's progress bar); None
            reads them here.

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
    config = DetectorConfig(detector) if isinstance(detector, str) else detector
    found = config.build()
    classifier = load_classifier(model) if pre_label else None
    if classifier is not None and classifier.input_size != IMAGE_SIZE:
        raise EmolensError(f"{model} takes {classifier.input_size}-pixel faces; faces are collected at {IMAGE_SIZE}.")
    out.mkdir(parents=True, exist_ok=True)
    crops = _CropWriter(out, classifier.class_names if classifier is not None else [])
    for picture in pictures if pictures is not None else iter_pictures(sources, every=every):
        if picture.gray is None:  # unreadable: its error says why
            crops.summary.skipped.append(f"{picture.source}: {picture.error}")
            continue
        detections = found.detect(picture.gray)
        faces = crop_faces(picture.gray, detections.boxes, found.framing, IMAGE_SIZE)
        crops.add(
            picture, detections, faces, classifier.predict(faces) if classifier is not None and len(faces) else None
        )
    write_text(out / "faces.csv", _csv(crops.rows))
    logger.debug("Collected %d faces from %d pictures into %s", crops.summary.faces, crops.summary.pictures, out)
    return crops.summary


class _CropWriter:
    """Writes each picture's face crops under their folder (unlabelled/, or train/<guess>), with unique names,
    and keeps the faces.csv row of each. `class_names` are the pre-labelling classifier's (none without one)."""

    def __init__(self, out: Path, class_names: list[str]) -> None:
        self.out, self.class_names = out, class_names
        self.summary = CollectedFaces(out)
        self.rows: list[dict[str, object]] = []
        self.used: set[str] = set()

    def add(self, picture: Picture, detections: Detections, crops: np.ndarray, guesses: np.ndarray | None) -> None:
        self.summary.pictures += 1
        for k, crop in enumerate(crops):  # faces numbered from 1, as predict draws and writes them
            guess = None if guesses is None else self.class_names[int(guesses[k].argmax())]
            folder = UNLABELLED if guess is None else f"train/{guess}"
            name = _unique(f"{folder}/{_stem(picture)}-face{k + 1}", self.used)
            ok, encoded = cv2.imencode(".png", crop)
            if not ok:
                raise EmolensError(f"could not encode a face from {picture.source}.")
            write_bytes(self.out / name, encoded.tobytes())
            self.summary.faces += 1
            self.summary.by_folder[folder] += 1
            x, y, w, h = (int(v) for v in detections.boxes[k])
            self.rows.append(
                {
                    "file": name,
                    "source": picture.source,
                    "frame": picture.frame,
                    "face": k + 1,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "score": None if detections.scores is None else round(float(detections.scores[k]), 4),
                    "guess": guess,
                    "confidence": None if guesses is None else round(float(guesses[k].max()), 4),
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
