"""Printing for humans (tables, lines) and machines (JSON), shared by the command modules.

On a terminal a table fits the terminal's width (rich folds long cells). Off a terminal (a pipe, a file, a log
collector) nothing is wrapped: each row is one line, as wide as its values, so no number or name is ever broken
across lines, in the same frame rich draws. rich is imported only when a table is printed, so `--help` never
loads it.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

import click

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "human_time", "make_console", "print_json", "print_table", "say", "to_jsonable"]


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


def _plain(value: Any) -> Any:
    """`default` of the JSON encoder: what `to_jsonable` turns into text."""
    if isinstance(value, datetime | date | Decimal):
        return to_jsonable(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_compact = json.JSONEncoder(ensure_ascii=False, default=_plain).encode
"""One value on one line, by the C encoder (Python's falls back to its pure-Python encoder whenever it indents)."""


def _key(key: Any) -> str:
    """A member's name as the standard library writes a key that is not text (`true`, `null`, `1`)."""
    return key if isinstance(key, str) else _compact(key)


def _indented(value: Any, depth: int) -> str:
    """`value` as JSON: objects and arrays of the first two levels one member per line, indented two spaces a
    level; anything deeper (a rejection, a quarantined record) on one line of its own."""
    if depth < 2 and isinstance(value, dict) and value:
        pad = "\n" + "  " * (depth + 1)
        members = [f"{pad}{_compact(_key(key))}: {_indented(item, depth + 1)}" for key, item in value.items()]
        return "{" + ",".join(members) + "\n" + "  " * depth + "}"
    if depth < 2 and isinstance(value, list | tuple) and value:
        pad = "\n" + "  " * (depth + 1)
        return "[" + ",".join([pad + _indented(item, depth + 1) for item in value]) + "\n" + "  " * depth + "]"
    return _compact(value)


def print_json(data: Any) -> None:
    """One JSON document on stdout, indented to its second level and one line per deeper value: readable, and a
    sync's summary listing ten thousand rejections is written in a few hundredths of a second, not a quarter of
    one (the standard library indents with its pure-Python encoder)."""
    sys.stdout.write(_indented(data, 0) + "\n")


def make_console() -> Console:
    """A rich console on the current stdout, for a terminal (its width, its colours)."""
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=True)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table on stdout: drawn by rich and folded to the width on a terminal; written line by line, never
    wrapped, off one (`_write_unwrapped`). Timestamps labelled UTC; a cell is text, never rich markup."""
    if not sys.stdout.isatty():
        _write_unwrapped(sys.stdout, title, columns, rows)
        return
    from rich.table import Table
    from rich.text import Text

    console = make_console()
    cells = [[_cell(v) for v in row] for row in rows]
    keep = _unfolded(columns, cells, console.width)
    table = Table(title=title, show_lines=False, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold", no_wrap=index in keep)
    for row in cells:
        table.add_row(*(Text(text) for text in row))
    console.print(table)


_SHORT = 40
"""A column whose values are all at most this long (ids, logins, statuses, counts, timestamps) is not folded on a
terminal while the long ones (names, reasons, errors) can give way instead."""


def _unfolded(columns: Sequence[str], rows: list[list[str]], width: int) -> set[int]:
    """The columns to keep on one line on a terminal `width` wide: the short ones, narrowest first, while they
    leave every other column at least a few characters to fold into."""
    widest = [max([len(name), *(len(row[i]) for row in rows if i < len(row))]) for i, name in enumerate(columns)]
    room = width - 1 - 8 * len(columns)  # the frame, and a minimum for every column
    keep: set[int] = set()
    for index in sorted((i for i, w in enumerate(widest) if w <= _SHORT), key=widest.__getitem__):
        if widest[index] - 5 > room:
            break
        keep.add(index)
        room -= max(0, widest[index] - 5)
    return keep


_WIDTH_SAMPLE = 10_000
"""Rows read ahead to size the columns off a terminal; a longer value further down widens only its own line."""


def _write_unwrapped(out: TextIO, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """The table as rich draws it (same frame), but each row on one line however long, and streamed: a million
    rows cost seconds, not the minutes rich takes, and only the first `_WIDTH_SAMPLE` are held at once."""
    from rich.cells import cell_len  # the width a terminal or pager gives a value (wide and combining characters)

    rows = iter(rows)
    ahead = [[_one_line(_cell(v)) for v in row] for row in itertools.islice(rows, _WIDTH_SAMPLE)]
    widths = [cell_len(c) for c in columns]
    for cells in ahead:
        for index, text in enumerate(cells):
            widths[index] = max(widths[index], cell_len(text))

    def line(cells: Sequence[str], bar: str) -> str:
        padded = (f" {text}{' ' * (width - cell_len(text))} " for text, width in zip(cells, widths, strict=False))
        return bar + bar.join(padded) + bar + "\n"

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * (width + 2) for width in widths) + right + "\n"

    if title:
        out.write(title + "\n")
    out.write(rule("┏", "━", "┳", "┓") + line(columns, "┃") + rule("┡", "━", "╇", "┩"))
    out.writelines(line(cells, "│") for cells in ahead)
    out.writelines(line([_one_line(_cell(v)) for v in row], "│") for row in rows)
    out.write(rule("└", "─", "┴", "┘"))


def _one_line(text: str) -> str:
    """A value with line breaks (an error message) kept on its row's line."""
    return " ".join(text.splitlines()) if "\n" in text or "\r" in text else text


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
