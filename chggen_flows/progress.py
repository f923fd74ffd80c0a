"""Progress bars for long work (rich), quiet when output is not a terminal or in CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def progress_enabled(disable: bool | None = None) -> bool:
    """Whether progress bars are shown: on a terminal, not under CI, unless forced."""
    if disable is not None:
        return not disable
    if os.environ.get("CHGGEN_NO_PROGRESS") or os.environ.get("CI"):
        return False
    return sys.stderr.isatty()


def make_progress(transient: bool = False) -> Progress:
    """A rich Progress with the columns used across chggen-flows."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
    )


def track(
    iterable: Iterable[T],
    description: str,
    total: int | None = None,
    disable: bool | None = None,
) -> Iterator[T]:
    """Iterate with a progress bar (a no-op wrapper when progress is disabled)."""
    if not progress_enabled(disable):
        yield from iterable
        return
    with make_progress() as progress:
        task = progress.add_task(description, total=total, status="")
        for item in iterable:
            yield item
            progress.advance(task)
