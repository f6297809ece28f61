"""The ODBC connector: a consultant's query (or a shipped preset) read through pyodbc, streamed in batches.

The fetch itself (connect, run the query, `fetchmany`; errors in the consultant's terms, passwords never shown)
is `odbc_fetch`, and it runs in a reader process of its own (`read_ahead`), so that reading the ERP and judging
its rows use two cores. This side turns the batches the reader sends into `Record`s, with their digests, and
skips the rows the sync knows are unchanged.

The contacts query (`contacts()`) is read here, in-process, through the same `OdbcFetch` machinery (connection,
retries, timeouts, errors with the password masked), streamed with `fetchmany`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import TYPE_CHECKING

from integrator.connectors.base import LeaveOut, SkipUnchanged
from integrator.connectors.odbc_fetch import (
    PRESETS_DIR,
    READ_CHUNK,
    OdbcFetch,
    available_presets,
    load_preset,
    read_chunk,
    redact_secrets,
    secrets_in,
)
from integrator.connectors.read_ahead import ReaderProcess
from integrator.connectors.values import RowDigester
from integrator.errors import ConfigError, SourceError
from integrator.records import Contact, Record

if TYPE_CHECKING:
    from integrator.config import SourceConfig

__all__ = [
    "PRESETS_DIR",
    "READ_CHUNK",
    "OdbcConnector",
    "available_presets",
    "load_preset",
    "read_chunk",
    "redact_secrets",
    "secrets_in",
]


class OdbcConnector:
    """Reads customer records from any ODBC source: `records()` connects, runs the query and streams rows."""

    def __init__(self, source: SourceConfig, *, retry_wait: float = 1.0) -> None:
        """`retry_wait`: the first backoff in seconds between connection attempts (doubling after each).

        Raises `ConfigError` for a bad column mapping or an unusable preset, before anything connects."""
        # Checks the config here and reads contacts; the reader process builds its own to read customers.
        self._fetch = OdbcFetch(source, retry_wait=retry_wait)
        self._source = source
        self._retry_wait = retry_wait

    @property
    def connection_string(self) -> str:
        """The string actually used to connect (streaming settings added). Holds the password: never log it."""
        return self._fetch.connection_string

    def describe(self) -> str:
        """One line for logs and `integrator check`: where, what and how, with the password masked."""
        return self._fetch.describe()

    @property
    def has_contacts(self) -> bool:
        """Whether a contacts query is configured (`[source] contacts_query`)."""
        return self._fetch.has_contacts

    def contacts(self, *, digest_key: bytes | None = None) -> Iterator[Contact]:
        """Every row of the contacts query as a `Contact`, streamed; origins read "contacts row N".

        With `digest_key`, each contact carries its raw row's keyed digest. Raises `ConfigError` at once when no
        contacts query is configured; `SourceError` (at the first contact) when it cannot be read or lacks a
        required column.
        """
        if not self.has_contacts:
            raise ConfigError("no contacts source configured ([source] contacts_query)")
        return self._contacts(digest_key)

    def _contacts(self, digest_key: bytes | None) -> Iterator[Contact]:
        # Fetched by a reader process, as the customers are: pyodbc's fetch holds the GIL, and the sync joins
        # and judges a contact while the reader fetches the next ones.
        reading = ReaderProcess(self._source, None, self._retry_wait, digest_key, contacts=True)
        try:
            names, types = reading.columns()
            reader = self._fetch.contact_reader(names, types)
            convert = reader.convert
            number = 0
            if digest_key is None:
                for batch in reading.batches():
                    for row in batch.rows:
                        number += 1
                        yield convert(row, f"contacts row {number}")
                return
            digest = RowDigester(reader.erp_id_position, digest_key, types).digest
            for batch in reading.batches():
                for row, row_digest in zip(batch.rows, batch.digests or map(digest, batch.rows), strict=True):
                    number += 1
                    yield convert(row, f"contacts row {number}", row_digest)
        finally:
            reading.close()

    def records(
        self,
        only: str | None = None,
        *,
        digest_key: bytes | None = None,
        skip: SkipUnchanged | None = None,
        leave_out: LeaveOut | None = None,
    ) -> Iterator[Record]:
        """Every customer record, streamed; with `only`, just that erp_id's.

        With `digest_key`, each record carries its raw row's digest, and a row for which `skip(erp_id, digest)`
        answers True is not converted or yielded at all (the sync's unchanged-row fast path). With `leave_out`
        too, the reader process does not even send the untagged rows it names (see `LeaveOut`): on a first sync
        that is a third of a typical ERP that never crosses between the processes.

        The reader process starts at this call, not at the first record: the ERP runs the query while the
        caller gets ready (the sync loads its ledger meanwhile).
        """
        if self._source.tags_layout == "rows":  # one record from several rows: no row digests
            digest_key = None
        if digest_key is None or skip is None:  # only the digest path below reads positions
            leave_out = None
        reading = ReaderProcess(self._source, only, self._retry_wait, digest_key, leave_out and leave_out.tag)
        return self._records(reading, digest_key, skip, leave_out)

    def _records(
        self,
        reading: ReaderProcess,
        digest_key: bytes | None,
        skip: SkipUnchanged | None,
        leave_out: LeaveOut | None = None,
    ) -> Iterator[Record]:
        try:
            names, types = reading.columns()
            reader = self._fetch.row_reader(names, types)
            batches = reading.batches()
            if self._source.tags_layout == "rows":
                rows = chain.from_iterable(batch.rows for batch in batches)
                yield from reader.grouped(rows, "row {}".format, "add ORDER BY erp_id to the query")
                return
            convert, number = reader.convert, 0
            if digest_key is None:
                for batch in batches:
                    for row in batch.rows:
                        number += 1
                        yield convert(row, f"row {number}")
                return
            digester = RowDigester(reader.erp_id_position, digest_key, types)
            digest_of, erp_id_of = digester.digest, digester.erp_id_of
            tags_of, tags_at = reader.tags_of, reader.tags_position
            if leave_out is not None:
                # The caller holds no account, so `skip` would answer False for every row sent (each is tagged or
                # has no erp_id): it is not asked. Rows keep the numbers they had as fetched.
                for batch, digests, positions, fetched in batches:
                    if fetched > len(batch):
                        leave_out.count(fetched - len(batch))
                    if positions is None:  # nothing was left out of this batch
                        positions = range(fetched)
                    for at, row, digest in zip(positions, batch, digests or map(digest_of, batch), strict=True):
                        yield convert(row, f"row {number + at + 1}", digest)
                    number += fetched
                return
            for batch, digests, positions, _ in batches:
                if positions is not None:
                    raise SourceError("the ODBC reader process left rows out unasked")
                for row, digest in zip(batch, digests or map(digest_of, batch), strict=True):
                    number += 1
                    if skip is not None and skip(erp_id_of(row), digest, tags_of(row[tags_at])):
                        continue
                    yield convert(row, f"row {number}", digest)
        finally:
            reading.close()
