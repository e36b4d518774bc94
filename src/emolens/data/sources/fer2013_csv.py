"""The FER2013 CSV (emotion,pixels[,Usage]) as a dataset source."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emolens._progress import track
from emolens.constants import FER2013_CSV_CLASSES, IMAGE_SIZE
from emolens.data.dataset import Dataset, SkippedFile, SourceListing, Split, split_arrays
from emolens.data.sources import register_source, source_hint
from emolens.errors import EmolensError

CSV_FORMAT = f"{IMAGE_SIZE}x{IMAGE_SIZE} L"  # a FER2013 CSV row is 48x48 gray by construction
CSV_USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def _csv_rows(reader: csv.DictReader, skipped: list[SkippedFile], name: str) -> Iterator[tuple[int, dict]]:
    """The reader's rows with the line each ends on; a row the csv module rejects (a field above its size
    limit) is recorded as skipped, and reading goes on with the next."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            skipped.append(SkippedFile(f"{name}:{reader.line_num}", f"bad row: {error}"))
            continue
        yield reader.line_num, row


@register_source(".csv", description="the FER2013 .csv")
def list_csv(path: Path) -> SourceListing:
    """A CSV is read whole when decoded; its size and modification time key the cache."""
    stat = path.stat()
    return SourceListing("csv", fingerprint_parts=[f"{stat.st_size}\t{stat.st_mtime_ns}"], decode=decode_csv)


def decode_csv(listing: SourceListing, path: Path, bare_split: str) -> Dataset:
    """The rows of a FER2013 CSV as splits by their Usage column (a row without one is training data); rows
    that do not parse are skipped with why. `bare_split` does not apply: the CSV names its splits."""
    skipped: list[SkippedFile] = []
    by_split: dict[str, tuple[list, list]] = {}
    # errors="replace": a stray non-UTF-8 byte spoils its own row (it cannot parse as a number), not the file.
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        reader = csv.DictReader(file)
        if not reader.fieldnames or not {"emotion", "pixels"} <= set(reader.fieldnames):
            raise EmolensError(
                f"{path} is not a FER2013 CSV: it needs the columns emotion,pixels[,Usage]. {source_hint()}"
            )
        pixel_count = IMAGE_SIZE * IMAGE_SIZE
        for line, row in track(_csv_rows(reader, skipped, path.name), total=None, description="Reading CSV"):
            name = f"{path.name}:{line}"
            try:
                label = int(row["emotion"])
                pixels = np.array(row["pixels"].split(), dtype=np.int64)
                if (
                    not 0 <= label < len(FER2013_CSV_CLASSES)
                    or pixels.size != pixel_count
                    or pixels.min() < 0
                    or pixels.max() > 255
                ):
                    raise ValueError(f"expected an emotion in 0-6 and {pixel_count} pixels in 0-255")
            except (ValueError, TypeError, AttributeError, OverflowError) as error:
                skipped.append(SkippedFile(name, f"bad row: {error}"))
                continue
            split = CSV_USAGE_SPLITS.get((row.get("Usage") or "Training").strip(), "train")
            labels, items = by_split.setdefault(split, ([], []))
            items.append((name, pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), CSV_FORMAT))
            labels.append(label)
    if not by_split:
        raise EmolensError(f"{path} has no usable rows. {source_hint()}")
    splits: dict[str, Split] = {
        s: split_arrays(by_split[s][1], by_split[s][0]) for s in ("train", "val", "test") if s in by_split
    }
    return Dataset(str(path), FER2013_CSV_CLASSES, splits, tuple(skipped), listing.fingerprint())
