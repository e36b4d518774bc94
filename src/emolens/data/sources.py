"""Reading a FER2013-style dataset from a folder, a ZIP or the FER2013 CSV into decoded arrays.

Folders and ZIPs share one layout: `train/`, `test/` and optionally `val/` (or `validation/`), each with one
subfolder per class; a bare folder of class subfolders is a single split. A ZIP may hold all of it under one
top folder. ZIP members are read in memory, one by one: nothing from an archive is ever written to disk.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import lzma
import os
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath

import numpy as np

from emolens._io import MAX_FILE_BYTES, UnreadableFile, read_bounded, read_file, stat_regular_file
from emolens._progress import track
from emolens.constants import FER2013_CSV_CLASSES, IMAGE_SIZE
from emolens.data.decode import UndecodableImage, decode_face
from emolens.errors import EmolensError

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "training": "train", "test": "test", "val": "val", "validation": "val", "valid": "val"}
CSV_FORMAT = f"{IMAGE_SIZE}x{IMAGE_SIZE} L"  # a FER2013 CSV row is 48x48 gray by construction
CSV_USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SOURCE_HINT = "Pass a folder with train/ and test/ class subfolders, a .zip of one, or the FER2013 .csv."


@dataclass(frozen=True)
class Split:
    """One split of a dataset: decoded images, their class indices, and where each came from.

    Example:
        >>> split = Split(np.zeros((3, 48, 48), np.uint8), np.array([0, 1, 1]), ("a.png", "b.png", "c.png"))
        >>> len(split), split.subset(np.array([2])).names
        (3, ('c.png',))
    """

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, indices into Dataset.class_names
    names: tuple[str, ...]
    # Each file's own "WIDTHxHEIGHT MODE" before decoding (empty when unknown).
    formats: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> Split:
        formats = tuple(self.formats[i] for i in indices) if self.formats else ()
        return Split(self.images[indices], self.labels[indices], tuple(self.names[i] for i in indices), formats)


@dataclass(frozen=True)
class SkippedFile:
    """A file a source held that could not be used, and why (listed in runs' skipped.txt and by data inspect).

    Example:
        >>> SkippedFile("train/happy/notes.txt", "not an image").reason
        'not an image'
    """

    name: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """Every split of a source, decoded. `fingerprint` is a cheap key from the listing, for the cache.

    Example:
        >>> from emolens.data import load_dataset
        >>> dataset = load_dataset("fer2013.zip")                                  # doctest: +SKIP
        >>> dataset.class_names[:3], dataset.split("test").images.shape          # doctest: +SKIP
        (('angry', 'disgust', 'fear'), (3589, 48, 48))
    """

    source: str
    class_names: tuple[str, ...]
    splits: dict[str, Split]
    skipped: tuple[SkippedFile, ...] = ()
    fingerprint: str = ""

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise EmolensError(
                f"{self.source} has no '{name}' split (it has: {', '.join(self.splits) or 'none'}). "
                f"Add a {name}/ folder with one subfolder per class, or choose another split."
            )
        return self.splits[name]

    def content_digest(self) -> str:
        """A hash of the decoded pixels, labels and class names: the same for a copied, moved or re-zipped source.

        Resume compares it, since file times (part of `fingerprint`) change whenever a dataset is copied.
        """
        digest = hashlib.sha256("\n".join(self.class_names).encode())
        for name in sorted(self.splits):
            split = self.splits[name]
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(split.images).tobytes())
            digest.update(split.labels.astype("<i8").tobytes())
        return digest.hexdigest()[:16]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class in each split, for logs and run files."""
        return {
            split_name: {c: int(n) for c, n in zip(self.class_names, np.bincount(s.labels, minlength=len(self.class_names)))}
            for split_name, s in self.splits.items()
        }


@dataclass
class SourceListing:
    """What a source holds before decoding: file names with a way to read each, and folder names."""

    kind: str
    files: list[tuple[str, Callable[[], bytes]]] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    fingerprint_parts: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def _is_hidden(parts: Iterable[str]) -> bool:
    # Finder, Windows and macOS zip tools leave metadata files that are not part of the dataset.
    return any(p.startswith(".") or p in ("__MACOSX", "Thumbs.db", "desktop.ini") for p in parts)


def _list_folder(root: Path) -> SourceListing:
    listing = SourceListing("folder")
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        relative_dir = Path(directory).relative_to(root)
        for sub in subdirs:
            listing.folders.add((relative_dir / sub).as_posix())
        for name in sorted(files):
            path = Path(directory) / name
            relative = (relative_dir / name).as_posix()
            if _is_hidden(PurePosixPath(relative).parts):
                continue
            try:
                stat = stat_regular_file(path)  # a FIFO would hang the read, /dev/zero would never end it
            except OSError as error:
                listing.skipped.append(SkippedFile(relative, f"not read: {error.strerror or error}"))
                continue
            listing.files.append((relative, partial(read_file, path)))
            listing.fingerprint_parts.append(f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return listing


def _is_safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not (name.startswith(("/", "\\")) or "\\" in name or ".." in path.parts or ":" in "".join(path.parts[:1]))


# What a damaged or unusual member raises on read: a bad CRC or header (BadZipFile), the encrypted flag
# (RuntimeError), an unknown compression method (NotImplementedError), truncated or corrupt data.
_MEMBER_ERRORS = (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError, EOFError, OSError)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as member:
            return read_bounded(member, MAX_FILE_BYTES, info.filename)
    except UnreadableFile:
        raise
    except _MEMBER_ERRORS as error:
        raise UnreadableFile(f"damaged or unsupported ZIP member ({error})") from error


@lru_cache(maxsize=4)
def _open_archive(path: str, size: int, mtime_ns: int) -> zipfile.ZipFile:
    """An open archive, kept while it is being read member by member (keyed by size and mtime, so a replaced
    file is opened afresh): its central directory is parsed once, not once per member."""
    return zipfile.ZipFile(path)


def read_zip_member(path: str | os.PathLike, member: str) -> bytes:
    """The bytes of one member of a ZIP archive, read as dataset members are (bounded, damage reported).

    Raises:
        UnreadableFile: the archive or the member cannot be read (missing, damaged, encrypted, too large).
    """
    try:
        stat = stat_regular_file(path)
        archive = _open_archive(os.fspath(path), stat.st_size, stat.st_mtime_ns)
        info = archive.getinfo(member)
    except (zipfile.BadZipFile, KeyError) as error:
        raise UnreadableFile(f"not a readable ZIP member ({error})") from error
    return _read_member(archive, info)


def list_zip_members(path: str | os.PathLike) -> tuple[list[str], list[SkippedFile]]:
    """The member names of a ZIP archive that are files (no folders, hidden or unsafe paths), in archive order,
    and the members left out with why."""
    listing = _list_zip(Path(path))
    return [name for name, _ in listing.files], listing.skipped


def _list_zip(path: Path) -> SourceListing:
    listing = SourceListing("zip")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise EmolensError(f"{path} is not a readable ZIP archive ({error}). {SOURCE_HINT}") from error
    # Member names, sizes and CRCs fix the content, so a copied archive keeps its key (no mtime).
    for info in archive.infolist():
        name = info.filename
        if not _is_safe_member(name):
            listing.skipped.append(SkippedFile(name, "unsafe path in archive (absolute or with '..'); ignored"))
            continue
        parts = PurePosixPath(name).parts
        if not parts or _is_hidden(parts):
            continue
        if info.is_dir():
            listing.folders.add(PurePosixPath(name).as_posix())
            continue
        # Parent folders are implied by files even when the archive has no entries for them.
        for depth in range(1, len(parts)):
            listing.folders.add("/".join(parts[:depth]))
        if info.file_size > MAX_FILE_BYTES:  # as declared; _read_member also stops at the cap whatever it declares
            listing.skipped.append(SkippedFile(name, f"not read: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"))
            continue
        listing.files.append((PurePosixPath(name).as_posix(), partial(_read_member, archive, info)))
        listing.fingerprint_parts.append(f"{name}\t{info.file_size}\t{info.CRC}")
    return listing


def _strip_top_folder(listing: SourceListing) -> None:
    """Drops one folder that wraps everything (fer2013/train/... -> train/...)."""
    while listing.files:
        tops = {name.split("/", 1)[0] for name, _ in listing.files}
        top = next(iter(tops))
        if len(tops) != 1 or top.lower() in SPLIT_NAMES or all(name.count("/") < 2 for name, _ in listing.files):
            return
        prefix = top + "/"
        listing.files = [(name[len(prefix):], read) for name, read in listing.files]
        listing.folders = {f[len(prefix):] for f in listing.folders if f.startswith(prefix)}


def _arrange(listing: SourceListing, source: str, bare_split: str) -> dict[str, dict[str, list[tuple[str, Callable[[], bytes]]]]]:
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
        raise EmolensError(f"{source} holds no class folders. {SOURCE_HINT}")
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
        for (split, label, name, _), (image, detail) in zip(files, results):
            if image is None:
                skipped.append(SkippedFile(name, detail))
                continue
            items, labels = collected.setdefault(split, ([], []))
            items.append((name, image, detail))
            labels.append(label)
    return {s: _split_arrays(*collected[s]) for s in ("train", "val", "test") if s in collected}


def _fingerprint(kind: str, parts: list[str]) -> str:
    digest = hashlib.sha256(f"{kind}\n{IMAGE_SIZE}\n".encode())
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()[:16]


def _split_arrays(items: list[tuple[str, np.ndarray, str]], labels: list[int]) -> Split:
    """(name, image, format) items and their labels as one Split."""
    images = np.stack([image for _, image, _ in items]) if items else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return Split(images, np.asarray(labels, dtype=np.int64), tuple(item[0] for item in items), tuple(item[2] for item in items))


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
    return Dataset(source, class_names, splits, tuple(listing.skipped), listing_fingerprint(listing))


def _check_every_class_readable(splits: dict[str, Split], class_names: tuple[str, ...], source: str) -> None:
    for split_name, split in splits.items():
        counts = np.bincount(split.labels, minlength=len(class_names))
        if (counts == 0).any():
            missing = class_names[int(np.argmin(counts))]
            raise EmolensError(f"class {split_name}/{missing} in {source} has no readable images. Fix or remove it.")


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


def _load_csv(path: Path, fingerprint: str) -> Dataset:
    skipped: list[SkippedFile] = []
    by_split: dict[str, tuple[list, list]] = {}
    # errors="replace": a stray non-UTF-8 byte spoils its own row (it cannot parse as a number), not the file.
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        reader = csv.DictReader(file)
        if not reader.fieldnames or not {"emotion", "pixels"} <= set(reader.fieldnames):
            raise EmolensError(f"{path} is not a FER2013 CSV: it needs the columns emotion,pixels[,Usage]. {SOURCE_HINT}")
        pixel_count = IMAGE_SIZE * IMAGE_SIZE
        for line, row in track(_csv_rows(reader, skipped, path.name), total=None, description="Reading CSV"):
            name = f"{path.name}:{line}"
            try:
                label = int(row["emotion"])
                pixels = np.array(row["pixels"].split(), dtype=np.int64)
                if not 0 <= label < len(FER2013_CSV_CLASSES) or pixels.size != pixel_count or pixels.min() < 0 or pixels.max() > 255:
                    raise ValueError(f"expected an emotion in 0-6 and {pixel_count} pixels in 0-255")
            except (ValueError, TypeError, AttributeError, OverflowError) as error:
                skipped.append(SkippedFile(name, f"bad row: {error}"))
                continue
            split = CSV_USAGE_SPLITS.get((row.get("Usage") or "Training").strip(), "train")
            labels, items = by_split.setdefault(split, ([], []))
            items.append((name, pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), CSV_FORMAT))
            labels.append(label)
    if not by_split:
        raise EmolensError(f"{path} has no usable rows. {SOURCE_HINT}")
    splits = {s: _split_arrays(by_split[s][1], by_split[s][0]) for s in ("train", "val", "test") if s in by_split}
    return Dataset(str(path), FER2013_CSV_CLASSES, splits, tuple(skipped), fingerprint)


def refuse_output_inside(out: str | os.PathLike, source: str | os.PathLike, flag: str = "--out") -> None:
    """An EmolensError if `out` lies inside the folder dataset `source`: the next load would read what was
    written there as part of the dataset (in a class folder, as its training images)."""
    source = Path(source)
    if source.is_dir() and Path(out).resolve().is_relative_to(source.resolve()):
        raise EmolensError(f"{out} is inside the dataset {source}, and what {flag} writes there would be read as part of it. Choose a folder outside it.")


def list_source(source: str | os.PathLike) -> SourceListing:
    """Lists a source without decoding it: enough to fingerprint it. Raises EmolensError if unusable."""
    path = Path(source)
    if not path.exists():
        raise EmolensError(f"no such file or folder: {path}. {SOURCE_HINT}")
    if path.is_dir():
        return _list_folder(path)
    try:
        stat = stat_regular_file(path, limit=sys.maxsize)  # any size (both are read piece by piece), never a FIFO
    except UnreadableFile as error:
        raise EmolensError(f"cannot read {error}. {SOURCE_HINT}") from error
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _list_zip(path)
    if suffix == ".csv":
        return SourceListing("csv", fingerprint_parts=[f"{stat.st_size}\t{stat.st_mtime_ns}"])
    raise EmolensError(f"cannot read {path}: unknown kind of source. {SOURCE_HINT}")


def listing_fingerprint(listing: SourceListing) -> str:
    return _fingerprint(listing.kind, listing.fingerprint_parts)


def decode_listing(listing: SourceListing, source: str | os.PathLike, *, bare_split: str = "train") -> Dataset:
    """Decodes what `list_source` found.

    Args:
        listing: the result of `list_source(source)`.
        source: str or path. The same source, for messages and for reading a CSV.
        bare_split: str. The split a bare folder of class subfolders becomes. Defaults to "train".

    Returns:
        The decoded Dataset.
    """
    if listing.kind == "csv":
        return _load_csv(Path(source), listing_fingerprint(listing))
    return _load_tree(listing, str(source), bare_split)
