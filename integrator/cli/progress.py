"""A progress line for long work (a sync's read and apply, a mail delivery), shown only on a terminal.

`meter(...)` gives a `Meter` that the work tells how far it has come; on a terminal it draws one line with the
count, the rate (records/s, mails/s) and, when the total is known, a bar and the time left; anywhere else
(a pipe, a file, cron, the daemon) it does nothing at all, so logs and piped output carry no control codes.
`track(items, ...)` is the same for a loop over an iterable. rich is imported only when a line is drawn.

    with meter("delivering mail", unit="mails", total=pending) as progress:
        for batch in batches:
            send(batch)
            progress.advance(len(batch))
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["Meter", "meter", "track"]

T = TypeVar("T")


class Meter:
    """Told how far the work has come; draws nothing (the base: off a terminal)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """A new stage of the work (e.g. from reading to writing): its count, rate and time left start again."""

    def update(self, completed: int) -> None:
        """How many of the current stage are done so far."""

    def advance(self, count: int = 1) -> None:
        """`count` more are done."""


class _LiveMeter(Meter):
    """A rich progress line on the terminal. A count that passes its total (mail queued while a delivery runs goes
    out in it too) raises the total with it, so the line never shows 5,010/5,000 or a time left below zero."""

    def __init__(self, progress: Progress, task: TaskID, total: int | None) -> None:
        self._progress, self._task = progress, task
        self._total, self._completed = total, 0
        self._turn = threading.Lock()
        """Several sending threads of a delivery advance one line."""

    def stage(self, description: str, total: int | None = None) -> None:
        with self._turn:
            self._total, self._completed = total, 0
            self._progress.reset(self._task, description=description, total=total, completed=0)

    def update(self, completed: int) -> None:
        with self._turn:
            self._set(completed)

    def advance(self, count: int = 1) -> None:
        with self._turn:
            self._set(self._completed + count)

    def _set(self, completed: int) -> None:
        self._completed = completed
        self._progress.update(self._task, completed=completed, total=self._raised_total())

    def _raised_total(self) -> int | None:
        if self._total is not None and self._completed > self._total:
            self._total = self._completed
        return self._total


def _columns(unit: str) -> list[object]:
    """Spinner, what is being done, a bar (moving while the total is unknown), then the figures."""
    from rich.progress import BarColumn, ProgressColumn, SpinnerColumn, Task, TextColumn
    from rich.text import Text

    class Figures(ProgressColumn):
        """`1,234/5,000 records  410 records/s  ETA 0:00:09`; without a total: the count, rate and time so far."""

        def render(self, task: Task) -> Text:
            done = f"{int(task.completed):,}" + (f"/{int(task.total):,}" if task.total is not None else "")
            rate = f"{task.speed:,.0f} {unit}/s" if task.speed else f"- {unit}/s"
            if task.total is not None:
                left = task.time_remaining
                when = "ETA " + (_clock(left) if left is not None else "-:--:--")
            else:
                when = _clock(task.elapsed or 0.0) + " elapsed"
            return Text(f"{done} {unit}  {rate}  {when}")

    return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=30), Figures()]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


@contextmanager
def meter(
    description: str, *, unit: str = "records", total: int | None = None, enabled: bool | None = None
) -> Iterator[Meter]:
    """A progress line for the work inside the `with`, removed when it ends; drawn only when `enabled`
    (default: stdout is a terminal)."""
    if not (sys.stdout.isatty() if enabled is None else enabled):
        yield Meter()
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*_columns(unit), console=Console(file=sys.stdout), transient=True) as progress:  # type: ignore[arg-type]
        yield _LiveMeter(progress, progress.add_task(description, total=total), total)


def track(
    items: Iterable[T], description: str, *, unit: str = "records", total: int | None = None,
    enabled: bool | None = None,
) -> Iterator[T]:  # fmt: skip
    """Each of `items`, counted on a progress line as it is handed out (see `meter`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with meter(description, unit=unit, total=total, enabled=enabled) as progress:
        for item in items:
            yield item
            progress.advance()
