"""ZIP archives as dataset sources and as prediction inputs: members read in memory, one by one, bounded in
size, with damage reported per member. Nothing from an archive is ever written to disk."""

from __future__ import annotations

import lzma
import os
import zipfile
import zlib
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath

from emolens._io import MAX_FILE_BYTES, UnreadableFile, read_bounded, stat_regular_file
from emolens.data.dataset import SkippedFile, SourceListing
from emolens.data.sources import is_hidden, register_source, source_hint
from emolens.errors import EmolensError


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
    listing = list_zip(Path(path))
    return [name for name, _ in listing.files], listing.skipped


@register_source(".zip", description="a .zip of such a folder")
def list_zip(path: Path) -> SourceListing:
    """The members of a ZIP archive, each read on demand; the archive layout is that of a folder source."""
    listing = SourceListing("zip")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise EmolensError(f"{path} is not a readable ZIP archive ({error}). {source_hint()}") from error
    # Member names, sizes and CRCs fix the content, so a copied archive keeps its key (no mtime).
    for info in archive.infolist():
        name = info.filename
        if not _is_safe_member(name):
            listing.skipped.append(SkippedFile(name, "unsafe path in archive (absolute or with '..'); ignored"))
            continue
        parts = PurePosixPath(name).parts
        if not parts or is_hidden(parts):
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
