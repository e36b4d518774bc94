"""Careful file access: bounded reads of regular files only, and atomic writes (a reader, or a crash, never sees
half a file)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

# No image emolens reads is near this (a 64-megapixel 16-bit RGBA PNG stored raw is 512 MB, but such files
# compress far below it); the cap keeps a mislabelled disk image or a 3 GB upload from being read into memory.
MAX_FILE_BYTES = 256 * 1024 * 1024


class UnreadableFile(OSError):
    """A file emolens will not read: not a regular file (a FIFO, a device, a socket), or larger than the cap."""


def _check_regular(mode: int, path: str | os.PathLike) -> None:
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
        raise UnreadableFile(f"{os.fspath(path)} is {kind}, not a regular file")


def _check_size(size: int, limit: int, path: str | os.PathLike) -> None:
    if size > limit:
        raise UnreadableFile(f"{os.fspath(path)} is larger than {limit // (1024 * 1024)} MB")


def stat_regular_file(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> os.stat_result:
    """The status of the regular file at `path` (symlinks followed), without opening it.

    Raises:
        UnreadableFile: it is not a regular file, or larger than `limit` bytes.
        OSError: it cannot be stat'ed (missing, a broken symlink, no permission).
    """
    info = os.stat(path)
    _check_regular(info.st_mode, path)
    _check_size(info.st_size, limit, path)
    return info


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """The regular file at `path`, opened for reading (checked on the open descriptor, so a FIFO swapped in after
    a listing cannot hang a read).

    Raises:
        UnreadableFile: it is not a regular file.
        OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    file = os.fdopen(fd, "rb")
    try:
        _check_regular(os.fstat(fd).st_mode, path)
    except UnreadableFile:
        file.close()
        raise
    return file


def read_file(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at `path`, read only if it holds at most `limit` of them (see
    `open_regular`); a file that grows past the cap is refused after `limit` + 1 bytes, never read whole.

    Raises:
        UnreadableFile: it is not a regular file, or larger than `limit` bytes.
        OSError: it cannot be opened or read.
    """
    with open_regular(path) as file:
        _check_size(os.fstat(file.fileno()).st_size, limit, path)
        data = file.read(limit + 1)
    _check_size(len(data), limit, path)
    return data


def read_bounded(file: IO[bytes], limit: int, name: str) -> bytes:
    """At most `limit` bytes from an open stream (a ZIP member, an upload); more is an UnreadableFile error."""
    data = file.read(limit + 1)
    _check_size(len(data), limit, name)
    return data


# mkstemp makes owner-only files; finished files get the usual permissions. The umask can only be read by
# setting it, so that happens once, at import, before any thread of ours exists.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it onto `path` only if the block succeeds.

    The temporary name keeps the final suffix, because some writers (Keras, matplotlib) choose the
    format from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, _FILE_MODE)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as error:
        if error.filename is not None:
            raise
        # A full disk fails inside a write, where the error names no file: name the one that was being written.
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary folder beside `path`, renamed onto `path` only if the block succeeds.

    `path` must not exist, or be an empty folder; a failed block leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp_path, 0o777 & ~_UMASK)  # mkdtemp makes owner-only folders
    try:
        yield tmp_path
        if path.is_dir():
            path.rmdir()
        os.replace(tmp_path, path)
    except OSError as error:
        if error.filename is not None and not str(error.filename).startswith(str(tmp_path)):
            raise
        # A file inside the temporary folder, or none (a full disk fails inside a write): name the folder the
        # user asked for, which is all that was being written.
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


# A CSV cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (a photo named
# "=HYPERLINK(...)" would run one when faces.csv is opened); a leading apostrophe makes it text, as OWASP advises.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """`value` for a CSV cell people open in a spreadsheet: text that would start a formula gets a leading '.

    Examples:
        >>> spreadsheet_safe("=HYPERLINK(\"http://x\")"), spreadsheet_safe("photo.jpg"), spreadsheet_safe(-3)
        ('\'=HYPERLINK("http://x")', 'photo.jpg', -3)
    """
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
