"""Printing for humans (rich tables) and machines (JSON), shared by the command modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["console", "human_time", "print_json", "print_table", "to_jsonable"]

console = Console(soft_wrap=True)


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


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    json.dump(to_jsonable(data), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table on stdout (plain text when not a terminal); timestamps labelled UTC."""
    table = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
