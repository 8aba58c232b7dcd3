"""Progress bars for the long passes, on a terminal only (silent when stdout is not a tty)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def bar(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A callback that advances a bar by a number of tensor elements, or None when not on a terminal."""
    if not sys.stdout.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), transient=True) as p:
        task = p.add_task(label, total=total)
        yield lambda n: p.advance(task, n)
