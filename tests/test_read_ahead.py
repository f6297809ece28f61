"""The ODBC reader process (`connectors.read_ahead`): the fetch runs in a child, the parent gets its rows.

Driven through the real SQLite3 ODBC driver. What matters beyond the rows themselves: a reader that dies is a
`SourceError` (never a short, "complete" read), a parent that stops early leaves no reader behind, and values
marshal cannot carry (Decimal) still arrive with their type.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from integrator.config import SourceConfig
from integrator.connectors import make_connector
from integrator.errors import SourceError
from tests.conftest import PG_HOST, PG_PORT, require_odbc_driver


def _source(
    path: Path, query: str = "SELECT erp_id, name, email, tags FROM customers", **extra: object
) -> SourceConfig:
    return SourceConfig(kind="odbc", connection_string=f"Driver=SQLite3;Database={path}", query=query, **extra)


def _erp(path: Path, customers: int) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (erp_id INTEGER PRIMARY KEY, name TEXT, email TEXT, tags TEXT)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, 'b2b')",
            ((n, f"Hurtownia Żółw {n}", f"k{n}@example.pl") for n in range(1, customers + 1)),
        )
    return path


def _readers() -> list[int]:
    """Pids of this process's living reader children."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"integrator.connectors.read_ahead" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(autouse=True)
def _linux_only(sqlite_odbc: str) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("finding the reader process needs /proc (Linux)")


def test_rows_come_through_the_reader_in_order(tmp_path: Path) -> None:
    records = list(make_connector(_source(_erp(tmp_path / "erp.db", 12_000), fetch_size=500)).records())
    assert [r.erp_id for r in records] == [str(n) for n in range(1, 12_001)]
    assert records[41].name == "Hurtownia Żółw 42" and records[41].tags == frozenset({"b2b"})
    assert _readers() == []


def test_the_reader_starts_without_the_config_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The job carries the source's settings as plain values: the reader imports neither pydantic nor the config
    module (most of its start, paid before it connects), as its own import log (`-X importtime`) shows."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # the reader inherits it; this process imported long ago
    records = list(make_connector(_source(_erp(tmp_path / "erp.db", 50))).records())
    imported = capfd.readouterr().err
    assert len(records) == 50 and "integrator.connectors.odbc_fetch" in imported
    assert "pydantic" not in imported and "integrator.config" not in imported


def test_the_reader_fetches_at_most_a_thousand_rows_at_a_time(tmp_path: Path) -> None:
    """A large `fetch_size` (the driver's rows per round trip) still reaches pyodbc as `fetchmany(1000)`."""
    from integrator.connectors.read_ahead import ReaderProcess

    reading = ReaderProcess(_source(_erp(tmp_path / "erp.db", 3_500), fetch_size=5_000), None, 1.0)
    try:
        reading.columns()
        sizes = [len(batch.rows) for batch in reading.batches()]
    finally:
        reading.close()
    assert sizes == [1_000, 1_000, 1_000, 500]


def test_a_reader_killed_mid_read_is_a_source_error_not_a_short_read(tmp_path: Path) -> None:
    records = make_connector(_source(_erp(tmp_path / "erp.db", 50_000), fetch_size=100)).records()
    assert len(list(itertools.islice(records, 10))) == 10
    (reader,) = _readers()
    os.kill(reader, signal.SIGKILL)
    with pytest.raises(SourceError, match=r"reader process was killed by signal 9 after \d+ rows") as caught:
        for _ in records:
            pass
    read = int(caught.value.args[0].split(" after ")[1].split()[0])
    assert 10 <= read < 50_000


def test_a_parent_that_stops_early_leaves_no_reader_behind(tmp_path: Path) -> None:
    records = make_connector(_source(_erp(tmp_path / "erp.db", 50_000), fetch_size=100)).records()
    assert len(list(itertools.islice(records, 5))) == 5
    assert len(_readers()) == 1
    records.close()  # what dropping the generator does, e.g. after `integrator check` sampled its rows
    deadline = time.monotonic() + 10
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _readers() == []


def test_errors_raised_in_the_reader_keep_their_wording(tmp_path: Path) -> None:
    source = _source(_erp(tmp_path / "erp.db", 10), query="SELECT erp_id, name, email, tags FROM no_such_table")
    with pytest.raises(SourceError, match="the source query failed: .*no_such_table"):
        list(make_connector(source).records())
    assert _readers() == []


@pytest.mark.postgres
def test_values_marshal_cannot_carry_arrive_with_their_type(tmp_path: Path, pg_database: str) -> None:
    """PostgreSQL numeric comes back as Decimal, which travels pickled: the digest must not depend on the route."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}", autocommit=True) as db:
        db.execute("CREATE TABLE customers (erp_id int, name text, email text, tags text, discount numeric(5,2))")
        db.execute("INSERT INTO customers VALUES (1, 'Firma', 'f@example.pl', 'b2b', 12.50)")
    source = SourceConfig(
        kind="odbc",
        connection_string=f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Database={pg_database};"
        "Uid=postgres",
        query="SELECT erp_id, name, email, tags, discount FROM customers",
    )
    connector = make_connector(source)
    (first,) = connector.records(digest_key=b"k", skip=lambda *_: False)
    (again,) = connector.records(digest_key=b"k", skip=lambda *_: False)
    assert first.discount == Decimal("12.50") and isinstance(first.discount, Decimal)
    assert first.digest and first.digest == again.digest


def test_digests_from_a_reader_that_is_ahead_equal_the_parents(tmp_path: Path) -> None:
    """A reader whose queue is full digests its batches itself; those digests must be exactly the parent's."""
    from integrator.connectors.read_ahead import ReaderProcess
    from integrator.connectors.values import RowDigester

    source = _source(_erp(tmp_path / "erp.db", 120_000), fetch_size=500)  # more rows than the queue holds
    reading = ReaderProcess(source, None, 1.0, b"reading key")
    try:
        _, types = reading.columns()
        digest = RowDigester(0, b"reading key", types).digest
        time.sleep(1.5)  # the parent is busy: the reader fills its queue, then digests what it fetches next
        batches = list(reading.batches())
    finally:
        reading.close()
    assert sum(len(batch.rows) for batch in batches) == 120_000
    digested = [(batch.rows, batch.digests) for batch in batches if batch.digests is not None]
    assert digested, "the reader never digested a batch while the parent was behind"
    assert any(batch.digests is None for batch in batches[:5])  # the first batches were taken off an empty queue
    for rows, digests in digested:
        assert digests == [digest(row) for row in rows]


def test_a_cli_sync_through_the_reader_prints_only_its_own_log_lines(tmp_path: Path) -> None:
    """The reader shares the sync's stderr: it must add no warnings or tracebacks of its own there, so every
    line a sync prints is still one of its JSON log lines."""
    import json

    from support.crash import integrator
    from support.erp import SqliteErp, make_config

    erp = SqliteErp(tmp_path / "erp.db")
    for n in range(1, 301):
        erp.add(n)
    done = integrator(make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path), "sync", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["created"] == 300
    for line in filter(None, done.stderr.splitlines()):
        assert json.loads(line)["component"], line  # every line is a JSON log line, nothing else
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr
    assert _readers() == []
