"""Reading an ODBC source here, in this process: connect (with retries), run the query, `fetchmany` its rows.

This is what the ODBC connector's reader process runs (`read_ahead_child`); the connector itself (`odbc`) builds
an `OdbcFetch` to check the source config and to describe it, and reads the contacts query with it in-process
(`open_contacts`: a smaller read, where a second process would not pay). Every pyodbc error is turned into a
`SourceError` that says what went wrong in the consultant's terms (driver not installed, DSN not defined, the
query failed, the connection was lost mid-read), and nothing shown to anyone (errors, logs, `describe()`)
carries the connection string's password.

Streaming is `fetchmany` here, but whether the *driver* streams is its own setting: psqlODBC buffers the whole
result unless `UseDeclareFetch=1`, the SQLite ODBC driver unless `StepAPI=1`, MariaDB Connector/ODBC unless
`NO_CACHE=1`. So for those drivers, named in a connection string, the setting is added unless the string already
has it (a consultant may still set it to 0). Microsoft's SQL Server driver and FreeTDS stream by default. A
DSN's driver is not looked up: set the option in odbc.ini.

Nothing here logs by itself: `open_result` takes the function that reports a warning (in the reader process,
one that hands it to the parent), so this module needs no logging set-up and imports no logging library.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import pyodbc

from integrator.connectors.contact_values import CONTACT_COLUMNS, ContactReader, make_contact_reader
from integrator.connectors.preset_files import PRESETS_DIR, available_presets, load_preset
from integrator.connectors.preset_schema import Needed, catalog_query, columns_used, missing
from integrator.connectors.sql_dialect import dialect_for, translate
from integrator.connectors.values import RowReader, check_column_mapping, make_row_reader
from integrator.errors import ConfigError, SourceError, TransientSourceError

if TYPE_CHECKING:  # tenacity is imported when a connection is made; the config models come with the job
    import tenacity

    from integrator.config import SourceConfig

__all__ = [
    "PRESETS_DIR",
    "READ_CHUNK",
    "OdbcFetch",
    "Warn",
    "available_presets",
    "load_preset",
    "read_chunk",
    "redact_secrets",
    "secrets_in",
]

Warn = Callable[..., None]
"""`warn(event, **fields)`: reports one warning (a structured log line) about the read."""

READ_CHUNK = 1000
"""Rows per `fetchmany` at most, whatever `fetch_size` says: pyodbc builds each batch's rows at once, and a
thousand rows of a dozen values stay in the CPU caches while the next steps read them; at 5,000 they do not.
A million-row read takes about 8 % less time (the bare read and the sync alike). `fetch_size` still sets the
driver's rows per round trip (psqlODBC's `Fetch`), so no more round trips are made."""

_SECRET_VALUE = re.compile(r"(?i)(\b\w*(?:pwd|password|secret|token)\s*=\s*)(\{(?:[^}]|\}\})*\}|[^;]*)")
_ODBC_VALUE = r"(?i)(?:^|;)\s*{}\s*=\s*(\{{(?:[^}}]|\}}\}})*\}}|[^;]*)"
_TRAILING_ORDER_BY = re.compile(r"\border\s+by\s+[^()'\"]*$", re.IGNORECASE)
_LIMITS_ROWS = re.compile(r"\b(?:top|limit|offset|fetch)\b", re.IGNORECASE)
_TRANSIENT_STATES = ("HYT00", "HYT01")
_CONNECTION_LOST_STATES = ("57P01", "57P02", "57P03", "HYT00", "HYT01")
_MIN_LITERAL_SECRET = 4
"""Shorter passwords are redacted by key only: replacing every "ab" in a message would garble it."""
_STREAMING_OPTIONS: tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...] = (
    (("sqlite",), (("StepAPI", "1"),)),
    (("postgres", "psql"), (("UseDeclareFetch", "1"), ("Fetch", "{fetch}"))),
    (("mariadb", "mysql"), (("NO_CACHE", "1"),)),
)


def read_chunk(fetch_size: int) -> int:
    """The `fetchmany` size for a source's `fetch_size`."""
    return min(fetch_size, READ_CHUNK)


def redact_secrets(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every `PWD=`/`Password=` (and `...Secret=`, `...Token=`) value masked, and `secrets` anywhere."""
    text = _SECRET_VALUE.sub(r"\1***", text)
    for secret in secrets:
        if len(secret) >= _MIN_LITERAL_SECRET:
            text = text.replace(secret, "***")
    return text


def secrets_in(connection_string: str) -> tuple[str, ...]:
    raw = [match.group(2).strip() for match in _SECRET_VALUE.finditer(connection_string)]
    return tuple({*raw, *map(_unbrace, raw)} - {""})


class OdbcFetch:
    """One ODBC source as configured: its effective connection string and query, and `open_result` to read it."""

    def __init__(self, source: SourceConfig, *, retry_wait: float = 1.0) -> None:
        """`retry_wait`: the first backoff in seconds between connection attempts (doubling after each).

        Raises `ConfigError` for a source that is not ODBC, a bad column mapping or an unusable preset."""
        if source.kind != "odbc":
            raise ConfigError(f"OdbcConnector needs kind = 'odbc', got {source.kind!r}")
        check_column_mapping(source.columns)
        check_column_mapping(source.contact_columns, CONTACT_COLUMNS, "[source.contact_columns]", "contact")
        self._source = source
        self._connection_string = (
            _streaming(source.connection_string, source.fetch_size) if source.connection_string else f"DSN={source.dsn}"
        )
        self._secrets = secrets_in(self._connection_string)
        if source.preset:
            self._query = _clean_query(load_preset(source.preset, source.preset_options))
        else:
            self._query = _clean_query(source.query or "")
        self._contacts_query = _clean_query(source.contacts_query) if source.contacts_query else None
        self._retry_wait = retry_wait
        self._engine_sql: dict[str, str] = {}
        self._preset_verified = False

    @property
    def connection_string(self) -> str:
        """The string actually used to connect (streaming settings added). Holds the password: never log it."""
        return self._connection_string

    def describe(self) -> str:
        """One line for logs and `integrator check`: where, what and how, with the password masked."""
        what = f"preset {self._source.preset}" if self._source.preset else "query " + _shorten(self._query)
        layout = "one row per tag" if self._source.tags_layout == "rows" else "tags in one column"
        contacts = f"; contacts query {_shorten(self._contacts_query)}" if self._contacts_query else ""
        return f"odbc {self._redact(self._connection_string)}: {what} ({layout}){contacts}"

    @property
    def has_contacts(self) -> bool:
        """Whether `[source] contacts_query` is set."""
        return self._contacts_query is not None

    def row_reader(self, names: list[str], types: list[Any]) -> RowReader:
        """The reader of this source's rows, for a result with these column names and Python types."""
        return make_row_reader(
            names,
            mapping=self._source.columns,
            tag_separator=self._source.tag_separator if self._source.tags_layout == "column" else None,
            where="the source query",
            column_types=types,
            attributes=self._source.attributes,
        )

    def contact_reader(self, names: list[str], types: list[Any]) -> ContactReader:
        """The reader of the contacts query's rows, for a result with these column names and Python types."""
        return make_contact_reader(
            names,
            mapping=self._source.contact_columns,
            where="the contacts query",
            column_types=types,
            attributes=self._source.attributes,
        )

    def verify_preset(self) -> str:
        """Connect once (no retries) and check that the preset's tables and columns exist: a line saying how
        many, or a `ConfigError` naming each one missing; a `SourceError` when the database cannot be reached.
        For `check` and for `sync` before a run starts (the read checks again, once per `OdbcFetch`)."""
        if not self._source.preset:
            raise ConfigError("[source] has no preset to verify")
        connection = self._connect_once()
        try:
            self._preset_verified = False
            self._verify_preset(connection)
        except pyodbc.Error as exc:
            raise SourceError(f"ODBC error on {self.describe()}: {self._redact(_state_and_message(exc)[1])}") from None
        finally:
            with contextlib.suppress(pyodbc.Error):
                connection.close()
        tables, columns = len(self._preset_needs), sum(map(len, self._preset_needs.values()))
        return f"preset {self._source.preset}: all {tables} tables and {columns} columns it reads exist"

    @contextlib.contextmanager
    def open_result(self, only: str | None, warn: Warn) -> Iterator[tuple[list[str], list[Any], Iterator[list[Any]]]]:
        """Connect and run the query: (column names, column types, batches of rows); `warn` reports what goes
        wrong without stopping the read (a retried connection, a refused query timeout).

        The columns are checked for the required ones before anything is returned.
        """
        with self._result(warn, lambda connection, cursor: self._execute(connection, cursor, only)) as result:
            yield result

    @contextlib.contextmanager
    def open_contacts(self, warn: Warn) -> Iterator[tuple[list[str], list[Any], Iterator[list[Any]]]]:
        """Connect and run `contacts_query`, like `open_result` (same connection settings, retries, timeouts,
        errors); the columns are checked by `contact_reader`. Raises `ConfigError` when none is configured."""
        query = self._contacts_query
        if query is None:
            raise ConfigError("no contacts source configured ([source] contacts_query)")

        def execute(connection: pyodbc.Connection, cursor: pyodbc.Cursor) -> None:
            self._run(cursor, self._for_engine(connection, query, "the contacts query"), shown=query,
                      what="the contacts query")  # fmt: skip

        with self._result(warn, execute, what="the contacts query") as result:
            yield result

    @contextlib.contextmanager
    def _result(
        self, warn: Warn, execute: Callable[[pyodbc.Connection, pyodbc.Cursor], Any], what: str = "the source"
    ) -> Iterator[tuple[list[str], list[Any], Iterator[list[Any]]]]:
        connection = self._connect(warn)
        try:
            self._verify_preset(connection)
            cursor = connection.cursor()
            execute(connection, cursor)
            description = cursor.description or ()
            names, types = [column[0] for column in description], [column[1] for column in description]
            yield names, types, self._batches(cursor, what)
        except pyodbc.Error as exc:  # a call not wrapped more precisely below (cursor(), getinfo())
            raise SourceError(f"ODBC error on {self.describe()}: {self._redact(_state_and_message(exc)[1])}") from None
        finally:
            with contextlib.suppress(pyodbc.Error):  # after a lost connection closing fails too; nothing to add
                connection.close()

    # -- connecting ------------------------------------------------------------------------------------------

    def _connect(self, warn: Warn) -> pyodbc.Connection:
        import tenacity

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            warn(
                "odbc_connect_retry",
                source=self._redact(self._connection_string),
                attempt=state.attempt_number,
                of=self._source.connect_retries + 1,
                wait_seconds=round(state.next_action.sleep, 2) if state.next_action else None,
                error=self._redact(str(error)),
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._source.connect_retries + 1),
            wait=tenacity.wait_exponential(multiplier=self._retry_wait, max=60),
            retry=tenacity.retry_if_exception_type(TransientSourceError),
            before_sleep=log_retry,
            reraise=True,
        )
        connection: pyodbc.Connection = retrying(self._connect_once)
        self._set_query_timeout(connection, warn)
        return connection

    def _connect_once(self) -> pyodbc.Connection:
        try:
            return pyodbc.connect(self._connection_string, timeout=self._source.connect_timeout, autocommit=True)
        except pyodbc.Error as exc:
            raise self._connect_error(exc) from None

    def _connect_error(self, exc: pyodbc.Error) -> SourceError:
        state, message = _state_and_message(exc)
        message = self._redact(message)
        driver, dsn = self._keyword("driver"), self._keyword("dsn")
        if driver and "/" not in driver and "\\" not in driver and driver not in pyodbc.drivers():
            installed = ", ".join(pyodbc.drivers()) or "(none)"
            return SourceError(
                f"the ODBC driver {driver!r} is not installed on this machine; installed drivers: {installed}"
            )
        if driver and "can't open lib" in message.lower():
            return SourceError(
                f"the ODBC driver {driver!r} is registered (odbcinst.ini) but its library cannot be loaded: {message}"
            )
        if state == "IM002" and dsn:
            defined = ", ".join(sorted(pyodbc.dataSources())) or "(none)"
            return SourceError(f"the ODBC data source (DSN) {dsn!r} is not defined; defined DSNs: {defined}")
        where = self._redact(self._connection_string)
        if state.startswith("08") or state in _TRANSIENT_STATES:
            return TransientSourceError(f"cannot connect to the ERP database ({where}): {message}")
        return SourceError(f"cannot connect to the ERP database ({where}): {message}")

    def _keyword(self, name: str) -> str | None:
        """The value of one keyword of the connection string (`Driver`, `DSN`), braces removed."""
        match = re.search(_ODBC_VALUE.format(name), self._connection_string)
        return _unbrace(match.group(1)) if match else None

    def _set_query_timeout(self, connection: pyodbc.Connection, warn: Warn) -> None:
        """Set before the first `cursor()`, which is when pyodbc copies it onto the statement (pyodbc #1217)."""
        if not self._source.query_timeout:
            return
        try:
            connection.timeout = self._source.query_timeout
        except pyodbc.Error as exc:  # psqlODBC, for one, refuses the attribute; the read itself still works
            warn(
                "odbc_query_timeout_unsupported",
                source=self._redact(self._connection_string),
                query_timeout=self._source.query_timeout,
                error=self._redact(_state_and_message(exc)[1]),
            )

    # -- reading ---------------------------------------------------------------------------------------------

    def _execute(self, connection: pyodbc.Connection, cursor: pyodbc.Cursor, only: str | None) -> RowReader:
        """Run the query (narrowed to one erp_id for `only`) and build the row reader from its columns."""
        if only is None:
            self._run(cursor, self._for_engine(connection, self._query))
            return self._reader_of(cursor)
        inner = self._for_engine(connection, self._narrowable_query())
        self._run(cursor, f"SELECT * FROM ({inner}) q WHERE 1 = 0")  # learn the erp_id column's name and type
        reader = self._reader_of(cursor)
        name, kind = cursor.description[reader.erp_id_position][:2]
        quote = (connection.getinfo(pyodbc.SQL_IDENTIFIER_QUOTE_CHAR) or "").strip()
        column = f"{quote}{name.replace(quote, quote * 2)}{quote}" if quote else name
        parameter = _parameter(only.strip(), kind)
        if parameter is not None:  # else: a non-number against a numeric column; the empty probe result stands
            self._run(cursor, f"SELECT * FROM ({inner}) q WHERE q.{column} = ?", parameter)
        return reader

    def _for_engine(self, connection: pyodbc.Connection, sql: str, where: str = "the source query") -> str:
        """A preset's T-SQL (and, beside a preset, the contacts query) in the dialect of the engine connected
        to: as it is on SQL Server, translated for PostgreSQL, SQLite and MariaDB (`sql_dialect`). A query of
        the consultant's own, without a preset, is theirs: it runs as written."""
        if not self._source.preset:
            return sql
        dialect = _dialect(connection)
        if dialect is None:
            return sql
        key = f"{dialect}\0{sql}"
        if key not in self._engine_sql:
            self._engine_sql[key] = translate(sql, dialect, where)
        return self._engine_sql[key]

    @functools.cached_property
    def _preset_needs(self) -> Needed:
        """Every table and column the preset's queries (and a contacts query beside it) read."""
        needed = columns_used(self._query, f"preset {self._source.preset!r}")
        if self._contacts_query is not None:
            for key, columns in columns_used(self._contacts_query, "the contacts query").items():
                needed.setdefault(key, set()).update(columns)
        return needed

    def _verify_preset(self, connection: pyodbc.Connection) -> None:
        """Before a preset's first read: every table and column its queries use exists (`preset_schema`), else a
        `ConfigError` naming each one missing, so nothing is read from a database the preset does not fit."""
        if not self._source.preset or self._preset_verified:
            return
        name, needed = self._source.preset, self._preset_needs
        dialect = _dialect(connection)
        tables = sorted({table for _, table in needed})
        cursor = connection.cursor()
        catalog = catalog_query(dialect, len(tables))
        self._run(cursor, catalog, *tables, shown=catalog, what="the preset's schema check")
        problems = missing(needed, [tuple(row) for row in cursor.fetchall()], dialect)
        if problems:
            raise ConfigError(
                f"[source] preset {name!r} does not fit this ERP database: it reads tables and columns the database "
                "does not have (another version of the ERP?) or the login may not read (GRANT SELECT on them)",
                problems,
            )
        self._preset_verified = True

    def _narrowable_query(self) -> str:
        """The query fit to be a derived table: SQL Server refuses a trailing ORDER BY there (and needs none)."""
        if _LIMITS_ROWS.search(self._query):
            return self._query
        return _TRAILING_ORDER_BY.sub("", self._query).rstrip()

    def _run(
        self,
        cursor: pyodbc.Cursor,
        sql: str,
        *parameters: Any,
        shown: str | None = None,
        what: str = "the source query",
    ) -> None:
        """Execute `sql`; an error names `what` failed and shows `shown` (the consultant's query, by default)."""
        try:
            cursor.execute(sql, *parameters)
        except pyodbc.Error as exc:
            state, message = _state_and_message(exc)
            if state in _TRANSIENT_STATES:
                raise TransientSourceError(
                    f"{what} timed out (query_timeout = {self._source.query_timeout} s): {self._redact(message)}"
                ) from None
            query = self._query if shown is None else shown
            raise SourceError(f"{what} failed: {self._redact(message)}\n  query: {_shorten(query, 200)}") from None

    def _reader_of(self, cursor: pyodbc.Cursor) -> RowReader:
        description = cursor.description or ()
        return self.row_reader([column[0] for column in description], [column[1] for column in description])

    def _batches(self, cursor: pyodbc.Cursor, what: str = "the source") -> Iterator[list[pyodbc.Row]]:
        """`fetchmany` batches until the result ends; a driver error mid-read is a `SourceError`."""
        fetch, size, read = cursor.fetchmany, read_chunk(self._source.fetch_size), 0
        while True:
            try:
                batch = fetch(size)
            except pyodbc.Error as exc:
                raise self._read_error(exc, read, what) from None
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"the driver returned text that is not valid {exc.encoding} after {read} rows ({exc.reason}): "
                    "CAST the column AS NVARCHAR in the query, or set the driver's client charset to UTF-8"
                ) from None
            if not batch:
                return
            read += len(batch)
            yield batch

    def _read_error(self, exc: pyodbc.Error, read: int, what: str = "the source") -> SourceError:
        state, message = _state_and_message(exc)
        message, where = self._redact(message), self._redact(self._connection_string)
        if state.startswith("08") or state in _CONNECTION_LOST_STATES or "connection" in message.lower():
            return TransientSourceError(f"lost connection while reading {what} ({where}) after {read} rows: {message}")
        return SourceError(f"reading {what} ({where}) failed after {read} rows: {message}")

    def _redact(self, text: str) -> str:
        return redact_secrets(text, self._secrets)


def _dialect(connection: pyodbc.Connection) -> str | None:
    """sqlglot's dialect of the engine connected to (None: SQL Server, where T-SQL runs as written)."""
    return dialect_for(str(connection.getinfo(pyodbc.SQL_DBMS_NAME) or ""))


def _unbrace(value: str) -> str:
    value = value.strip()
    if value.startswith("{") and value.endswith("}"):
        return value[1:-1].replace("}}", "}")
    return value


def _state_and_message(exc: pyodbc.Error) -> tuple[str, str]:
    """pyodbc errors carry `(sqlstate, message)`; anything else is all message."""
    if len(exc.args) >= 2 and isinstance(exc.args[0], str):
        return exc.args[0], str(exc.args[1])
    return "", " ".join(map(str, exc.args)) or type(exc).__name__


def _clean_query(query: str) -> str:
    # A trailing ";" is harmless alone but breaks the query once it is wrapped for `only`.
    return query.strip().rstrip(";").rstrip()


def _streaming(connection_string: str, fetch_size: int) -> str:
    """The connection string with the named driver's streaming setting added when it is absent."""
    match = re.search(_ODBC_VALUE.format("driver"), connection_string)
    driver = _unbrace(match.group(1)).lower() if match else ""
    for names, options in _STREAMING_OPTIONS:
        if any(name in driver for name in names):
            added = [
                f"{key}={value.format(fetch=fetch_size)}"
                for key, value in options
                if not re.search(_ODBC_VALUE.format(re.escape(key)), connection_string)
            ]
            if added:
                return connection_string.rstrip().rstrip(";") + ";" + ";".join(added)
    return connection_string


def _parameter(value: str, kind: Any) -> Any:
    """`only` typed like the erp_id column, so the database compares numbers with numbers; None: cannot match."""
    try:
        if kind is int:
            return int(value)
        if kind is Decimal:
            number = Decimal(value)
            return number if number.is_finite() else None
        if kind is float:
            return float(value)
    except (ValueError, InvalidOperation):
        return None
    return value


def _shorten(sql: str, limit: int = 80) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
