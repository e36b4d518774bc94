"""Native-library housekeeping: quieting libraries (TensorFlow, OpenCV, FFmpeg) that write to file descriptor 2
beneath Python, and handing freed memory back to the operating system."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Points file descriptor 2 at /dev/null, where C and C++ code write beneath Python's sys.stderr."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return None


def release_free_memory() -> None:
    """Returns memory that has been freed to the operating system, where the C library allows it.

    glibc keeps freed blocks of a few MB (Pillow decodes into 16 MB blocks) in its per-thread arenas, so after
    a burst of large pictures a process would otherwise stay at its peak size; `malloc_trim(0)` gives them back.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
