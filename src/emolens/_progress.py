"""Progress bars for library work that takes more than a few seconds, shown only to a person at a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars go to stderr when it is a terminal; EMOLENS_PROGRESS=0/1 forces them off/on."""
    forced = os.environ.get("EMOLENS_PROGRESS")
    if forced is not None:
        return forced not in ("", "0", "false", "no")
    return sys.stderr.isatty()


@contextmanager
def progress_bar(*, total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """A transient progress bar of `total` steps (None: unknown); yields `advance(steps)`."""
    if not progress_enabled():
        yield lambda steps: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda steps: bar.advance(task, steps)


def track(iterable: Iterable[T], *, total: int | None, description: str) -> Iterator[T]:
    """Yields from `iterable` while drawing a transient progress bar of `total` steps (None: unknown)."""
    with progress_bar(total=total, description=description) as advance:
        for item in iterable:
            yield item
            advance(1)
