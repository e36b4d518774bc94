"""Writing the cleaned copy (PNG class folders, or the FER2013 CSV) and the list of what it left out."""

from __future__ import annotations

import csv
import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from emolens._io import atomic_dir, spreadsheet_safe, write_text
from emolens._progress import track
from emolens.data.dataset import Dataset
from emolens.data.inspection.cleaning import clean_dataset
from emolens.data.inspection.findings import ImageRef, Inspection
from emolens.data.sources import refuse_output_inside
from emolens.data.sources.fer2013_csv import CSV_USAGE_SPLITS
from emolens.errors import EmolensError

logger = logging.getLogger(__name__)


def _png_paths(split_name: str, class_names: tuple[str, ...], names: tuple[str, ...], labels: np.ndarray) -> list[str]:
    """Relative PNG paths in split/class/ for each image, from its own file name."""
    taken: set[str] = set()
    paths = []
    for name, label in zip(names, labels, strict=True):
        base = f"{split_name}/{class_names[int(label)]}/{PurePosixPath(name).stem}"
        path, number = f"{base}.png", 2
        while path in taken:  # a.jpg and a.png in one folder
            path, number = f"{base}-{number}.png", number + 1
        taken.add(path)
        paths.append(path)
    return paths


def _write_png_tree(dataset: Dataset, folder: Path) -> None:
    """The dataset as folder/split/class/name.png, the layout every emolens command reads."""
    for split_name, counts in dataset.counts().items():
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            raise EmolensError(
                f"after cleaning, {split_name}/ has no images of {', '.join(empty)}, so the copy would not load as a "
                "dataset. Add images of those classes, or leave them out of the source."
            )
    jobs = [
        (folder / path, image)
        for split_name, split in dataset.splits.items()
        for path, image in zip(
            _png_paths(split_name, dataset.class_names, split.names, split.labels), split.images, strict=True
        )
    ]
    for parent in {path.parent for path, _ in jobs}:
        parent.mkdir(parents=True, exist_ok=True)

    def save(job: tuple[Path, np.ndarray]) -> None:
        Image.fromarray(job[1], "L").save(job[0], format="PNG")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _ in track(pool.map(save, jobs), total=len(jobs), description="Writing the cleaned copy"):
            pass


def _write_fer2013_csv(dataset: Dataset, path: Path) -> None:
    """The dataset in the FER2013 CSV's own form (emotion,pixels,Usage), for a source that was such a CSV."""
    usage = {split: name for name, split in CSV_USAGE_SPLITS.items()}
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["emotion", "pixels", "Usage"])
        for split_name, split in dataset.splits.items():
            for label, image in zip(split.labels, split.images, strict=True):
                writer.writerow([int(label), " ".join(map(str, image.ravel().tolist())), usage[split_name]])


def write_removed_list(path: str | os.PathLike, removed: list[tuple[ImageRef, str]]) -> None:
    """removed.csv: split, file, label and reason for each image a cleaning left out."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["split", "file", "label", "reason"])
    writer.writerows(
        [ref.split, spreadsheet_safe(ref.name), spreadsheet_safe(ref.label), reason] for ref, reason in removed
    )
    write_text(path, buffer.getvalue())


def write_cleaned_copy(
    dataset: Dataset, report: Inspection, out: str | os.PathLike
) -> tuple[Path, list[tuple[ImageRef, str]]]:
    """Writes the cleaned dataset into a new folder, with removed.csv listing what was left out and why.

    A folder or ZIP source becomes 48x48 PNGs in split/class/ folders; a FER2013 CSV becomes a CSV of the same
    form and name. The folder appears whole or not at all, and the source is only read.

    Returns:
        The folder written and the images left out, with reasons.
    """
    out = Path(out)
    source = Path(dataset.source)
    refuse_output_inside(out, source, "--fix")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EmolensError(f"{out} already exists and is not empty. Choose a new folder for the cleaned copy.")
    cleaned, removed = clean_dataset(dataset, report)
    with atomic_dir(out) as building:
        if source.suffix.lower() == ".csv":
            _write_fer2013_csv(cleaned, building / source.name)
        else:
            _write_png_tree(cleaned, building)
        write_removed_list(building / "removed.csv", removed)
    logger.info(
        "Wrote %s: %d images kept, %d left out (see removed.csv)",
        out,
        sum(len(s) for s in cleaned.splits.values()),
        len(removed),
    )
    return out, removed
