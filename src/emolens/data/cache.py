"""Decoded datasets cached on disk, so that a dataset is decoded once, not on every run.

The cache key is the source's fingerprint (names, sizes, mtimes; CRCs inside a ZIP): a changed file makes a
new entry. Entries are single .npz files, written atomically. EMOLENS_CACHE_DIR moves the cache.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from emolens._io import atomic_path
from emolens.data.dataset import Dataset, SkippedFile, Split
from emolens.data.labels import apply_labels, read_labels
from emolens.data.sources import decode_listing, list_source

logger = logging.getLogger(__name__)

# Bump when decoding changes, so that old entries stop matching.
CACHE_FORMAT = 3  # 3: colour faces gray-converted and resized by emolens.data.preprocess, as prediction does


def cache_dir() -> Path:
    """Where decoded datasets are kept: $EMOLENS_CACHE_DIR, else $XDG_CACHE_HOME/emolens, else ~/.cache/emolens."""
    if os.environ.get("EMOLENS_CACHE_DIR"):
        return Path(os.environ["EMOLENS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emolens"


def _save(path: Path, dataset: Dataset) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, split in dataset.splits.items():
        arrays[f"{name}/images"] = split.images
        arrays[f"{name}/labels"] = split.labels
        arrays[f"{name}/names"] = np.asarray(split.names, dtype=str)
        arrays[f"{name}/formats"] = np.asarray(split.formats, dtype=str)
    meta = {
        "source": dataset.source,
        "class_names": list(dataset.class_names),
        "splits": list(dataset.splits),
        "skipped": [[s.name, s.reason] for s in dataset.skipped],
        "fingerprint": dataset.fingerprint,
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, allow_pickle=False, **arrays)  # as `_load` reads it: plain arrays, no pickled objects


def _load(path: Path) -> Dataset:
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
        splits = {
            name: Split(
                archive[f"{name}/images"],
                archive[f"{name}/labels"],
                tuple(archive[f"{name}/names"].tolist()),
                tuple(archive[f"{name}/formats"].tolist()),
            )
            for name in meta["splits"]
        }
    return Dataset(
        meta["source"],
        tuple(meta["class_names"]),
        splits,
        tuple(SkippedFile(n, r) for n, r in meta["skipped"]),
        meta["fingerprint"],
    )


def load_dataset(
    source: str | os.PathLike, *, bare_split: str = "train", cache: bool = True, labels: str | os.PathLike | None = None
) -> Dataset:
    """Loads a FER2013-style folder, ZIP or CSV as decoded 48x48 uint8 arrays, through the cache.

    Args:
        source: str or path. A folder with train/ and test/ (optionally val/) class subfolders, a .zip of one
            (with or without one top folder), a bare folder of class subfolders, or the FER2013 .csv.
        bare_split: str. Which split a bare folder of class subfolders is. Defaults to "train".
        cache: bool. Read and write the decoded-array cache. Defaults to True.
        labels: str or path or None. A labels file keyed by the images' paths (one class, or votes per class:
            see `emolens.data.labels`) that replaces the folders' labels. Defaults to None.

    Returns:
        A Dataset with splits among "train", "val" and "test".

    Examples:
        >>> dataset = load_dataset("fer2013.zip")  # doctest: +SKIP
        >>> dataset.split("train").images.shape  # doctest: +SKIP
        (28709, 48, 48)
    """
    # Read first: a bad labels file is reported before minutes of decoding.
    labels_file = read_labels(labels) if labels is not None else None
    dataset = _decoded(source, bare_split, cache)
    return apply_labels(dataset, labels_file) if labels_file is not None else dataset


def _decoded(source: str | os.PathLike, bare_split: str, cache: bool) -> Dataset:
    listing = list_source(source)
    if not cache:
        return decode_listing(listing, source, bare_split=bare_split)
    key = f"{listing.fingerprint()}-{bare_split}-v{CACHE_FORMAT}"
    path = cache_dir() / f"{key}.npz"
    if path.exists():
        try:
            dataset = _load(path)
            logger.debug("Loaded %s from the cache %s", source, path)
            return dataset
        except (OSError, ValueError, KeyError) as error:
            logger.warning("Ignoring a damaged cache entry %s (%s); decoding again.", path, error)
    dataset = decode_listing(listing, source, bare_split=bare_split)
    try:
        _save(path, dataset)
    except OSError as error:
        logger.warning("Could not write the dataset cache %s (%s); the next load will decode again.", path, error)
    return dataset
