"""The CSV connector: an ERP's file export (Subiekt and Optima export `;`-separated cp1250 by default).

The file is streamed row by row; the header row names the columns, and `[source.columns]` maps record
columns to the export's own headers. A line with the wrong number of fields is still yielded, with a problem
(the sync quarantines it): a broken line must never look like a customer who lost their tag.

A header that the configured delimiter leaves in one column while another common delimiter splits it (a
comma file read with `;`, or the other way round) is a configuration error, found when the connector is made,
before a sync starts: the message says which delimiter the header seems to use and which key to set.

A contacts export (`[source] contacts_path`, one row per contact person) is read by `contacts()` with the same
delimiter, encoding and rules for broken lines.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from integrator.config import SourceConfig
from integrator.connectors.base import LeaveOut, SkipUnchanged
from integrator.connectors.contact_values import CONTACT_COLUMNS, make_contact_reader
from integrator.connectors.values import RowDigester, check_column_mapping, make_row_reader
from integrator.errors import ConfigError, SourceError
from integrator.records import Contact, Record

__all__ = ["CsvConnector"]

_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
"""The delimiters a header is tried with when the configured one leaves it in one column."""


class _Position:
    """The data row the reader is at: where it came from and, if its shape is wrong, what is wrong."""

    __slots__ = ("flaw", "origin")

    def __init__(self) -> None:
        self.origin = ""
        self.flaw: str | None = None


class CsvConnector:
    """Reads customer records from a delimited text file with a header row."""

    def __init__(self, source: SourceConfig) -> None:
        if source.kind != "csv" or source.path is None:
            raise ConfigError(f"CsvConnector needs kind = 'csv' and a path, got kind {source.kind!r}")
        try:
            codecs.lookup(source.encoding)
        except LookupError:
            raise ConfigError(f"[source] encoding {source.encoding!r} is not a known text encoding") from None
        check_column_mapping(source.columns)
        check_column_mapping(source.contact_columns, CONTACT_COLUMNS, "[source.contact_columns]", "contact")
        self._source = source
        self._path = Path(source.path)
        self._contacts_path = None if source.contacts_path is None else Path(source.contacts_path)
        self._check_delimiter(self._path)
        if self._contacts_path is not None:
            self._check_delimiter(self._contacts_path)

    def _check_delimiter(self, path: Path) -> None:
        """Raise `ConfigError` when the header is one column with the configured delimiter but splits with
        another. A file that cannot be read yet is left alone: `records()` reports that."""
        try:
            with path.open(encoding=self._source.encoding, newline="") as handle:
                line = handle.readline().rstrip("\r\n").lstrip("\ufeff")
        except (OSError, UnicodeDecodeError):
            return
        configured = self._source.delimiter
        if _width(line, configured) != 1:
            return
        likely = max((d for d in _DELIMITERS if d != configured), key=lambda d: _width(line, d))
        columns = _width(line, likely)
        if columns < 2:
            return
        shown = line if len(line) <= 120 else line[:117] + "..."
        raise ConfigError(
            f"the CSV file {path}: its header row is one column with the configured delimiter "
            f"{_name(configured)} ({shown!r}), but it looks {_DELIMITERS[likely]}-separated ({columns} columns); "
            f"set [source] delimiter = {json.dumps(likely)}"
        )

    def describe(self) -> str:
        """One line for logs and `integrator check`."""
        layout = "one row per tag" if self._source.tags_layout == "rows" else "tags in one column"
        delimiter, encoding = self._source.delimiter, self._source.encoding
        contacts = f"; contacts {self._contacts_path}" if self._contacts_path is not None else ""
        return f"csv {self._path} (delimiter {delimiter!r}, encoding {encoding}, {layout}){contacts}"

    @property
    def has_contacts(self) -> bool:
        """Whether a contacts export is configured (`[source] contacts_path`)."""
        return self._contacts_path is not None

    def contacts(self, *, digest_key: bytes | None = None) -> Iterator[Contact]:
        """Every row of the contacts export as a `Contact`, streamed; origins read "contacts line N of FILE".

        Read with the customer file's delimiter and encoding; a line with the wrong number of fields is still
        yielded, with a problem. With `digest_key`, each contact carries its raw row's keyed digest. Raises
        `ConfigError` at once when no contacts export is configured.
        """
        if self._contacts_path is None:
            raise ConfigError("no contacts source configured ([source] contacts_path)")
        return self._contacts(self._contacts_path, digest_key)

    def _contacts(self, path: Path, digest_key: bytes | None) -> Iterator[Contact]:
        with self._open(path, "the contacts CSV file") as handle:
            try:
                lines = csv.reader(handle, delimiter=self._source.delimiter)
                header = self._header(lines, path, "the contacts CSV file")
                width = len(header)
                reader = make_contact_reader(
                    header,
                    mapping=self._source.contact_columns,
                    where=f"the contacts CSV file {path} (its header row)",
                    column_types=[str] * width,
                    attributes=self._source.attributes,
                )
                at = _Position()
                rows = self._rows(
                    lines, at, width, reader.erp_id_position, None, path, "contacts line ", f" of {path.name}"
                )
                convert = reader.convert
                digest = None if digest_key is None else RowDigester(reader.erp_id_position, digest_key, [str] * width)
                for row in rows:
                    contact = convert(row, at.origin, "" if digest is None else digest.digest(row))
                    yield contact if at.flaw is None else contact._replace(problems=(*contact.problems, at.flaw))
            except UnicodeDecodeError as exc:
                raise self._decode_error(exc, path) from None

    def records(
        self,
        only: str | None = None,
        *,
        digest_key: bytes | None = None,
        skip: SkipUnchanged | None = None,
        leave_out: LeaveOut | None = None,
    ) -> Iterator[Record]:
        """Every record in the file, streamed; with `only`, just that erp_id's (`digest_key`, `skip`: see
        `connectors.base.Connector.records`). `leave_out` is not taken up: the file is read in this process,
        and `skip` counts untagged rows as cheaply."""
        with self._open(self._path) as handle:
            try:
                yield from self._read(handle, only, digest_key, skip)
            except UnicodeDecodeError as exc:
                raise self._decode_error(exc, self._path) from None

    def _open(self, path: Path, what: str = "the CSV file") -> IO[str]:
        try:
            return path.open(encoding=self._source.encoding, newline="")
        except FileNotFoundError:
            raise SourceError(f"{what} {path} does not exist") from None
        except OSError as exc:
            raise SourceError(f"cannot open {what} {path}: {exc.strerror}") from None

    def _read(
        self, handle: IO[str], only: str | None, digest_key: bytes | None = None, skip: SkipUnchanged | None = None
    ) -> Iterator[Record]:
        lines = csv.reader(handle, delimiter=self._source.delimiter)
        header = self._header(lines, self._path)
        reader = make_row_reader(
            header,
            mapping=self._source.columns,
            tag_separator=self._source.tag_separator if self._source.tags_layout == "column" else None,
            where=f"the CSV file {self._path} (its header row)",
            column_types=[str] * len(header),
            attributes=self._source.attributes,
        )
        at = _Position()
        only = None if only is None else only.strip()
        rows = self._rows(lines, at, len(header), reader.erp_id_position, only, self._path, f"{self._path.name}:line ")
        if self._source.tags_layout == "rows":
            yield from reader.grouped(rows, lambda _: at.origin, "sort the file by erp_id", lambda _: at.flaw)
            return
        convert = reader.convert
        if digest_key is None:
            for row in rows:
                record = convert(row, at.origin)
                yield record if at.flaw is None else record._replace(problems=(*record.problems, at.flaw))
            return
        digester = RowDigester(reader.erp_id_position, digest_key, [str] * len(header))
        digest_of, erp_id_of = digester.digest, digester.erp_id_of
        tags_of, tags_at = reader.tags_of, reader.tags_position
        for row in rows:
            digest = digest_of(row)
            if at.flaw is None and skip is not None and skip(erp_id_of(row), digest, tags_of(row[tags_at])):
                continue
            record = convert(row, at.origin, digest)
            yield record if at.flaw is None else record._replace(problems=(*record.problems, at.flaw))

    def _header(self, lines: Any, path: Path, what: str = "the CSV file") -> list[str]:
        try:
            header: list[str] = next(lines)
        except StopIteration:
            raise SourceError(f"{what} {path} is empty; it needs a header row") from None
        except csv.Error as exc:
            raise SourceError(f"{path}: line 1: malformed CSV: {exc}") from None
        if not any(cell.strip() for cell in header):
            raise SourceError(f"{what} {path} starts with a blank line; it needs a header row")
        return header

    def _rows(
        self,
        lines: Any,
        at: _Position,
        width: int,
        erp_at: int,
        only: str | None,
        path: Path,
        before: str,
        after: str = "",
    ) -> Iterator[list[str]]:
        """Data rows of `path` padded to the header's width, `at` describing each (origin: `before`, the line
        number, `after`); blank lines skipped."""
        last_line = 1
        while True:
            try:
                row: list[str] = next(lines)
            except StopIteration:
                return
            except csv.Error as exc:
                raise SourceError(f"{path}: line {lines.line_num}: malformed CSV: {exc}") from None
            first_line, last_line = last_line + 1, lines.line_num
            size = len(row)
            if (size <= erp_at or not row[erp_at].strip()) and not any(map(str.strip, row)):
                continue  # a blank line, or a spreadsheet's trailing ";;;;"
            if size != width:
                row = (row + [""] * width)[:width]
            if only is not None and row[erp_at].strip() != only:
                continue
            at.origin = f"{before}{first_line}{after}"
            at.flaw = None if size == width else f"line has {size} fields, the header has {width}"
            yield row

    def _decode_error(self, exc: UnicodeDecodeError, path: Path) -> SourceError:
        line = _first_undecodable_line(path, self._source.encoding)
        where = f"line {line}" if line else "the file"
        return SourceError(
            f"{path}: {where} is not valid {self._source.encoding} text ({exc.reason}); "
            "set [source] encoding to the file's encoding (e.g. cp1250 or utf-8)"
        )


def _width(line: str, delimiter: str) -> int:
    """How many fields `line` splits into with `delimiter` (0 when it is not valid CSV with it)."""
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return 0


def _name(delimiter: str) -> str:
    """`delimiter` as it is written in the config (a JSON string is a valid TOML one), with its name."""
    written = json.dumps(delimiter)
    return f"{written} ({_DELIMITERS[delimiter]})" if delimiter in _DELIMITERS else written


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    """The 1-based line holding the bad bytes (the decoder fails on a buffered chunk, not on a line)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as raw:
        for number, line in enumerate(raw, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return number
    return None
