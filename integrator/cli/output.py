"""Printing for humans (tables, lines) and machines (JSON), shared by the command modules.

On a terminal a table fits the terminal's width (rich folds long cells). Off a terminal (a pipe, a file, a log
collector) nothing is wrapped: the table is as wide as its longest values, so no number or name is ever broken
across lines. rich is imported only when a table is printed, so `--help` never loads it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "human_time", "make_console", "print_json", "print_table", "say", "to_jsonable"]

_UNWRAPPED = 1_000_000
"""The width given to rich off a terminal: wider than any table, so nothing folds (a table is only as wide as
its cells; nothing is padded to this)."""


def to_jsonable(value: Any) -> Any:
    """JSON-friendly values: datetimes as ISO 8601 (UTC), decimals as strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def human_time(value: datetime) -> str:
    """A timestamp for people, labelled: the store keeps naive UTC (`integrator.clock`), so it says UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _cell(value: Any) -> str:
    if value.__class__ is str:  # most cells: no conversion
        return value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return human_time(value)
    return str(to_jsonable(value))


def say(line: str) -> None:
    """One line of text on stdout, as is: never wrapped, and no rich markup read into names like `[b2b]`."""
    click.echo(line)


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    json.dump(to_jsonable(data), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def make_console() -> Console:
    """A rich console on the current stdout: the terminal's width on a terminal, unwrapped anywhere else."""
    from rich.console import Console

    stream = sys.stdout
    if stream.isatty():
        return Console(file=stream, soft_wrap=True)
    return Console(file=stream, soft_wrap=True, width=_UNWRAPPED, no_color=True, highlight=False)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table on stdout (folded to a terminal's width, never wrapped off one); timestamps labelled UTC."""
    from rich.table import Table

    console = make_console()
    fold = console.is_terminal
    table = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold" if fold else "ignore", no_wrap=not fold)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table, crop=False)


class _StdoutConsole:
    """`console.print(...)` for modules that still print through rich directly: the rich console (on whatever
    stdout is at the time, lines soft-wrapped) is made on first use, so importing this costs nothing."""

    _made: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if _StdoutConsole._made is None:
            from rich.console import Console

            _StdoutConsole._made = Console(soft_wrap=True)
        return getattr(_StdoutConsole._made, name)


console: Console = _StdoutConsole()  # type: ignore[assignment]
