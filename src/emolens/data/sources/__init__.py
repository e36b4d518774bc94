"""Reading a FER2013-style dataset source into decoded arrays: the registry of the kinds of source, and the
layout that folders and ZIPs share.

Folders and ZIPs hold `train/`, `test/` and optionally `val/` (or `validation/`), each with one subfolder per
class; a bare folder of class subfolders is a single split. A ZIP may hold all of it under one top folder.
Folders are read here; every module of this package is a kind of file source (as `zip_archive.py`), a lister
that registers its suffix with `@register_source`, imported the first time a file source is listed
(`emolens._plugins`), so adding a kind of source is adding a file here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from emolens._io import UnreadableFile, read_file, stat_regular_file
from emolens._plugins import import_plugins, plugin_rank
from emolens._progress import track
from emolens.data.dataset import Dataset, SkippedFile, SourceListing, Split, split_arrays
from emolens.data.decode import UndecodableImage, decode_face
from emolens.errors import EmolensError

SPLIT_NAMES = {"train": "train", "training": "train", "test": "test", "val": "val", "validation": "val", "valid": "val"}
FOLDER_SOURCE = "a folder with train/ and test/ class subfolders"

Lister = Callable[[Path], SourceListing]


@dataclass(frozen=True)
class SourceKind:
    """A registered kind of file source: its suffix, its lister and how help texts and errors name it."""

    suffix: str
    lister: Lister
    description: str


_KINDS: dict[str, SourceKind] = {}


def register_source(suffix: str, *, description: str) -> Callable[[Lister], Lister]:
    """Registers the function that lists a kind of file source, by its suffix.

    The lister takes the file's path and returns a `SourceListing`: its files (as a tree of split and class
    folders) or, for a source read whole, the `decode` function that turns it into a Dataset. `description`
    names the kind after "a folder with train/ and test/ class subfolders" in help texts and errors.

    Examples:
        >>> @register_source(".npz", description="a NumPy .npz")                                # doctest: +SKIP
        ... def list_npz(path):
        ...     return SourceListing("npz", fingerprint_parts=[str(path.stat().st_size)], decode=...)
    """

    def register(lister: Lister) -> Lister:
        _KINDS[suffix.lower()] = SourceKind(suffix.lower(), lister, description)
        return lister

    return register


def _kinds() -> dict[str, SourceKind]:
    import_plugins(__name__)  # every module of this package is a kind of source; importing it registers it
    return _KINDS


def source_kinds() -> str:
    """What a dataset source may be, in words, from the registered kinds: for help texts and errors.

    Examples:
        >>> source_kinds()
        'a folder with train/ and test/ class subfolders, the FER2013 .csv, or a .zip of such a folder'
    """
    registered = sorted(_kinds().values(), key=lambda kind: plugin_rank(__name__, kind.lister.__module__))
    kinds = [FOLDER_SOURCE, *(kind.description for kind in registered)]
    return f"{', '.join(kinds[:-1])}, or {kinds[-1]}" if len(kinds) > 1 else kinds[0]


def source_hint() -> str:
    """The sentence that ends an error about an unusable source."""
    return f"Pass {source_kinds()}."


def is_hidden(parts: Iterable[str]) -> bool:
    # Finder, Windows and macOS zip tools leave metadata files that are not part of the dataset.
    return any(p.startswith(".") or p in ("__MACOSX", "Thumbs.db", "desktop.ini") for p in parts)


def _list_folder(root: Path) -> SourceListing:
    listing = SourceListing("folder")
    walked: set[str] = set()
    # Symbolic links to folders are followed (datasets are often assembled from links to class folders); a
    # folder reached twice, through a loop or two links, is read once.
    for directory, subdirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(directory)
        relative_dir = Path(directory).relative_to(root)
        if real in walked:
            subdirs.clear()
            listing.folders.discard(relative_dir.as_posix())  # not a class folder of its own
            listing.skipped.append(
                SkippedFile(
                    relative_dir.as_posix() + "/",
                    "a folder already read through another path (a symbolic link); read once",
                )
            )
            continue
        walked.add(real)
        subdirs.sort()
        for sub in subdirs:
            listing.folders.add((relative_dir / sub).as_posix())
        for name in sorted(files):
            path = Path(directory) / name
            relative = (relative_dir / name).as_posix()
            if is_hidden(PurePosixPath(relative).parts):
                continue
            try:
                stat = stat_regular_file(path)  # a FIFO would hang the read, /dev/zero would never end it
            except OSError as error:
                listing.skipped.append(SkippedFile(relative, f"not read: {error.strerror or error}"))
                continue
            listing.files.append((relative, partial(read_file, path)))
            listing.fingerprint_parts.append(f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return listing


def _strip_top_folder(listing: SourceListing) -> None:
    """Drops one folder that wraps everything (fer2013/train/... -> train/...)."""
    while listing.files:
        tops = {name.split("/", 1)[0] for name, _ in listing.files}
        top = next(iter(tops))
        if len(tops) != 1 or top.lower() in SPLIT_NAMES or all(name.count("/") < 2 for name, _ in listing.files):
            return
        prefix = top + "/"
        listing.files = [(name[len(prefix) :], read) for name, read in listing.files]
        listing.folders = {f[len(prefix) :] for f in listing.folders if f.startswith(prefix)}


def _arrange(
    listing: SourceListing, source: str, bare_split: str
) -> dict[str, dict[str, list[tuple[str, Callable[[], bytes]]]]]:
    """Sorts files into split -> class -> files, checking the class folders as it goes."""
    has_splits = any(f.split("/")[0].lower() in SPLIT_NAMES for f in listing.folders if "/" not in f)
    layout: dict[str, dict[str, list]] = {}
    class_folders: dict[str, set[str]] = {}
    for folder in listing.folders:
        parts = folder.split("/")
        if has_splits and len(parts) == 2 and parts[0].lower() in SPLIT_NAMES:
            class_folders.setdefault(SPLIT_NAMES[parts[0].lower()], set()).add(parts[1])
        elif not has_splits and len(parts) == 1:
            class_folders.setdefault(bare_split, set()).add(parts[0])
    for name, read in listing.files:
        parts = name.split("/")
        if has_splits:
            if parts[0].lower() not in SPLIT_NAMES:
                continue  # a README or LICENSE beside the splits is not part of the data
            split, class_parts = SPLIT_NAMES[parts[0].lower()], parts[1:]
        else:
            split, class_parts = bare_split, parts
        if len(class_parts) < 2:
            listing.skipped.append(SkippedFile(name, "not inside a class folder; ignored"))
            continue
        layout.setdefault(split, {}).setdefault(class_parts[0], []).append((name, read))
    if not class_folders:
        raise EmolensError(f"{source} holds no class folders. {source_hint()}")
    for split, classes in class_folders.items():
        empty = sorted(c for c in classes if not layout.get(split, {}).get(c))
        if empty:
            raise EmolensError(
                f"class folder {split}/{empty[0]} in {source} is empty. Put its images in it or remove the folder."
            )
    _check_same_classes({split: set(classes) for split, classes in class_folders.items()}, source)
    return layout


def _check_same_classes(classes_by_split: dict[str, set[str]], source: str) -> None:
    splits = sorted(classes_by_split, key=["train", "val", "test"].index)
    reference = classes_by_split[splits[0]]
    for split in splits[1:]:
        if classes_by_split[split] != reference:
            only_first = sorted(reference - classes_by_split[split])
            only_other = sorted(classes_by_split[split] - reference)
            raise EmolensError(
                f"{splits[0]}/ and {split}/ in {source} have different class folders "
                f"(only in {splits[0]}: {only_first or 'none'}; only in {split}: {only_other or 'none'}). "
                "Give every split the same class folders."
            )


def _decode_all(files: list[tuple[str, int, str, Callable[[], bytes]]], skipped: list[SkippedFile]) -> dict[str, Split]:
    """Decodes (split, label, name, read) tuples on all cores into splits; failures are recorded, never fatal."""

    def decode_one(item: tuple[str, int, str, Callable[[], bytes]]) -> tuple[np.ndarray | None, str]:
        try:
            data = item[3]()
        except OSError as error:
            return None, f"not read: {error.strerror or error}"
        try:
            return decode_face(data)
        except UndecodableImage as error:
            return None, f"not a readable image: {error}"

    collected: dict[str, tuple[list, list]] = {}
    # PIL releases the GIL while decoding, so threads use every core without copying arrays between processes.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = track(pool.map(decode_one, files), total=len(files), description="Decoding images")
        for (split, label, name, _), (image, detail) in zip(files, results, strict=True):
            if image is None:
                skipped.append(SkippedFile(name, detail))
                continue
            items, labels = collected.setdefault(split, ([], []))
            items.append((name, image, detail))
            labels.append(label)
    return {s: split_arrays(*collected[s]) for s in ("train", "val", "test") if s in collected}


def _load_tree(listing: SourceListing, source: str, bare_split: str) -> Dataset:
    _strip_top_folder(listing)
    layout = _arrange(listing, source, bare_split)
    class_names = tuple(sorted({c for classes in layout.values() for c in classes}))
    files = [
        (split, label, name, read)
        for split in layout
        for label, c in enumerate(class_names)
        for name, read in layout[split].get(c, [])
    ]
    splits = _decode_all(files, listing.skipped)
    _check_every_class_readable(splits, class_names, source)
    return Dataset(source, class_names, splits, tuple(listing.skipped), listing.fingerprint())


def _check_every_class_readable(splits: dict[str, Split], class_names: tuple[str, ...], source: str) -> None:
    for split_name, split in splits.items():
        counts = np.bincount(split.labels, minlength=len(class_names))
        if (counts == 0).any():
            missing = class_names[int(np.argmin(counts))]
            raise EmolensError(f"class {split_name}/{missing} in {source} has no readable images. Fix or remove it.")


def refuse_output_inside(out: str | os.PathLike, source: str | os.PathLike, flag: str = "--out") -> None:
    """An EmolensError if `out` lies inside the folder dataset `source`: the next load would read what was
    written there as part of the dataset (in a class folder, as its training images)."""
    source = Path(source)
    if source.is_dir() and Path(out).resolve().is_relative_to(source.resolve()):
        raise EmolensError(
            f"{out} is inside the dataset {source}, and what {flag} writes there would be read as part of it. Choose a folder outside it."
        )


def list_source(source: str | os.PathLike) -> SourceListing:
    """Lists a source without decoding it: enough to fingerprint it. Raises EmolensError if unusable."""
    path = Path(source)
    if not path.exists():
        raise EmolensError(f"no such file or folder: {path}. {source_hint()}")
    if path.is_dir():
        return _list_folder(path)
    try:
        stat_regular_file(path, limit=sys.maxsize)  # any size (sources are read piece by piece), never a FIFO
    except UnreadableFile as error:
        raise EmolensError(f"cannot read {error}. {source_hint()}") from error
    kind = _kinds().get(path.suffix.lower())
    if kind is None:
        raise EmolensError(f"cannot read {path}: unknown kind of source. {source_hint()}")
    return kind.lister(path)


def decode_listing(listing: SourceListing, source: str | os.PathLike, *, bare_split: str = "train") -> Dataset:
    """Decodes what `list_source` found.

    Args:
        listing: the result of `list_source(source)`.
        source: str or path. The same source, for messages and for a source read whole.
        bare_split: str. The split a bare folder of class subfolders becomes. Defaults to "train".

    Returns:
        The decoded Dataset.
    """
    if listing.decode is not None:
        return listing.decode(listing, Path(source), bare_split)
    return _load_tree(listing, str(source), bare_split)
