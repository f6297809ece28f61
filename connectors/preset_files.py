"""Shipped presets: one `connectors/presets/<name>.sql` per ERP, its customers query and its contacts query.

A preset file is T-SQL (what SQL Server, the ERPs' database, runs) with a comment header a consultant reads
first and this module reads too:

    -- erp: InsERT Subiekt nexo PRO                       <- one line, for `integrator presets list`
    -- option tag = 'b2b': the cecha that grants access   <- an option with its default and what it is for
    -- option from = 'main' | 'contact': which e-mail     <- a closed list of values, the first the default
    -- @customers                                          <- the customers query follows
    SELECT ...
    -- @contacts                                           <- the contacts query follows (optional)
    SELECT ...

`${name}` in the SQL is an option's place. A declared option's value is written as a SQL literal of its
default's type (a quoted default: a string, `N'…'` with quotes doubled, so a tag named O'Neil is no injection;
a number: an integer; `true`/`false`: 1 or 0), and `preset_options` may leave it out. A placeholder that is
not declared is filled with the raw text given, and must be given. An option whose values are listed
(`'a' | 'b'`) takes only those, so a typo is an error rather than a query that silently matches nothing.
The option `contacts` (true/false) says whether the preset's contacts query is read, making accounts per
contact person. A file without `-- @` markers is all customers query.

This module imports no ODBC or SQL library: the config reads a preset's contacts query through it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrator.errors import ConfigError

__all__ = [
    "CONTACTS_OPTION",
    "PRESETS_DIR",
    "Preset",
    "PresetOption",
    "available_presets",
    "load_preset",
    "preset_contacts_query",
    "read_preset",
]

PRESETS_DIR = Path(__file__).with_name("presets")
"""Shipped queries, one `<name>.sql` per preset."""

CONTACTS_OPTION = "contacts"
"""The option that switches a preset's contacts query on."""

_QUOTED = r"'(?:[^']|'')*'"
_OPTION = re.compile(rf"^--\s*option\s+(\w+)\s*=\s*({_QUOTED}(?:\s*\|\s*{_QUOTED})*|-?\d+|true|false)\s*(?::\s*(.*))?$")
_ERP = re.compile(r"^--\s*erp:\s*(.+)$")
_SECTION = re.compile(r"^--\s*@(customers|contacts)\s*$")


@dataclass(frozen=True)
class PresetOption:
    """One declared option: its default (str, int or bool), what it is for, and the only values it takes when
    the header lists them (the default first)."""

    name: str
    default: str | int | bool
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    """A preset file read: its one-line ERP name, its header (the comment before the first query), its options
    and its two query templates."""

    name: str
    erp: str
    header: str
    options: dict[str, PresetOption] = field(default_factory=dict)
    customers: str = ""
    contacts: str | None = None

    def placeholders(self) -> set[str]:
        """Every `${name}` either query uses."""
        found = set(string.Template(self.customers).get_identifiers())
        if self.contacts is not None:
            found |= set(string.Template(self.contacts).get_identifiers())
        return found

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """`preset_options` checked (every key known, every value of its option's type) and completed with the
        defaults; a `ConfigError` lists every problem."""
        known = self.placeholders() | set(self.options)
        problems = [
            f"[source.preset_options] {key!r} is not an option of preset {self.name!r} "
            f"(its options: {', '.join(sorted(known)) or 'none'})"
            for key in sorted(set(given) - known)
        ]
        problems += [
            f"[source.preset_options] preset {self.name!r} needs {key!r}"
            for key in sorted(known - set(given) - set(self.options))
        ]
        values: dict[str, Any] = {name: option.default for name, option in self.options.items()}
        for key, value in given.items():
            option = self.options.get(key)
            if option is not None and not _same_type(value, option.default):
                problems.append(
                    f"[source.preset_options] {key!r} of preset {self.name!r} must be {_type_name(option.default)}, "
                    f"got {value!r}"
                )
            elif option is not None and option.choices and value not in option.choices:
                problems.append(
                    f"[source.preset_options] {key!r} of preset {self.name!r} must be one of "
                    f"{', '.join(map(repr, option.choices))}, got {value!r}"
                )
            values[key] = value
        if problems:
            raise ConfigError(f"[source] preset {self.name!r} cannot be used as configured", problems)
        return values

    def render(self, part: str, given: Mapping[str, Any]) -> str | None:
        """The `part` query ("customers" or "contacts") with its options filled; None if the preset has none."""
        template = self.customers if part == "customers" else self.contacts
        if template is None:
            return None
        values = self.values(given)
        literals = {
            key: _literal(value) if key in self.options else str(value)
            for key, value in values.items()
            if key != CONTACTS_OPTION
        }
        return string.Template(template).substitute(literals).strip()

    def reads_contacts(self, given: Mapping[str, Any]) -> bool:
        """Whether the contacts query is read, as `preset_options` (or the default) says."""
        return self.contacts is not None and bool(self.values(given).get(CONTACTS_OPTION, False))


def available_presets(directory: Path = PRESETS_DIR) -> list[str]:
    """Names of the shipped presets (the `.sql` files in `directory`)."""
    if not directory.is_dir():
        return []
    return sorted(path.stem for path in directory.glob("*.sql"))


def read_preset(name: str, directory: Path = PRESETS_DIR) -> Preset:
    """The preset file `name`, parsed; an unknown name is a `ConfigError` listing the valid ones."""
    valid = available_presets(directory)
    if name not in valid:
        raise ConfigError(
            f"[source] preset {name!r} does not exist",
            [f"valid presets: {', '.join(valid) if valid else '(none are shipped yet)'}"],
        )
    text = (directory / f"{name}.sql").read_text(encoding="utf-8")
    header: list[str] = []
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    erp, options = "", {}
    for line in text.splitlines():
        stripped = line.strip()
        section = _SECTION.match(stripped)
        if section:
            current = parts.setdefault(section.group(1), [])
            continue
        if current is not None:
            current.append(line)
            continue
        header.append(line)
        if match := _ERP.match(stripped):
            erp = match.group(1).strip()
        elif match := _OPTION.match(stripped):
            choices = tuple(_default(text) for text in re.findall(_QUOTED, match.group(2)))
            options[match.group(1)] = PresetOption(
                match.group(1),
                choices[0] if choices else _default(match.group(2)),
                match.group(3) or "",
                choices if len(choices) > 1 else (),  # type: ignore[arg-type]
            )
    if not parts:  # no markers: the whole file is the customers query
        return Preset(name, erp, "", options, text)
    return Preset(
        name,
        erp,
        "\n".join(header).strip(),
        options,
        "\n".join(parts.get("customers", [])),
        "\n".join(parts["contacts"]) if "contacts" in parts else None,
    )


def load_preset(name: str, options: Mapping[str, Any], directory: Path = PRESETS_DIR, part: str = "customers") -> str:
    """A preset's customers (or contacts) query with its `${option}` placeholders filled from `preset_options`.

    Every undeclared placeholder needs a value and every option must be one the preset has, so a typo in the
    config is an error that names it rather than SQL that fails at the ERP.
    """
    preset = read_preset(name, directory)
    query = preset.render(part, options)
    if query is None:
        raise ConfigError(f"[source] preset {name!r} has no {part} query")
    return query


def preset_contacts_query(name: str, options: Mapping[str, Any], directory: Path = PRESETS_DIR) -> str | None:
    """The contacts query of preset `name` when its `contacts` option is on, else None (also for a preset that
    does not exist: the connector reports that, naming the valid ones)."""
    if name not in available_presets(directory):
        return None
    preset = read_preset(name, directory)
    return preset.render("contacts", options) if preset.reads_contacts(options) else None


def _default(text: str) -> str | int | bool:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    return int(text)


def _same_type(value: Any, default: str | int | bool) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def _type_name(default: str | int | bool) -> str:
    return "true or false" if isinstance(default, bool) else "a whole number" if isinstance(default, int) else "text"


def _literal(value: Any) -> str:
    """A checked option value as T-SQL: N'text' (quotes doubled), an integer, or 1/0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return "N'" + str(value).replace("'", "''") + "'"
