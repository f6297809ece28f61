"""What the ODBC connector costs on top of pyodbc's own `fetchmany`, measured in one run on one query.

    .venv/bin/python bench/connector_overhead.py [--rows 200000] [--fetch-size 5000] [--repeat 3]

Builds a SQLite database with every record column (Polish names, a few distinct tag strings and discounts,
like a real ERP), then alternates (a) a bare `cursor.fetchmany` loop over the query and (b) iterating
`OdbcConnector.records()` over the same query and connection string, and prints each timing. SQLite is read
through the SQLite3 ODBC driver with `StepAPI=1`, the setting that makes that driver stream.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyodbc

from integrator.config import SourceConfig
from integrator.connectors.odbc import OdbcConnector

QUERY = (
    "SELECT erp_id, name, email, tags, symbol, tax_id, phone, price_level, discount, sales_rep, sales_rep_email, "
    "active, locale FROM customers"
)
TAGS = ["b2b", "b2b,vip", "B2B, hurt", "detal", None, "b2b"]
NAMES = ["Zakład Łódź Żółć", "Hurtownia Gęś", "Śnieżka Sp. z o.o.", "Pan Gżegżółka", "Źdźbło s.c."]


def build_database(path: Path, rows: int) -> None:
    """A `customers` table with `rows` customers, about two thirds tagged b2b."""
    rng = random.Random(7)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (erp_id INTEGER PRIMARY KEY, name TEXT, email TEXT, tags TEXT, symbol TEXT, "
            "tax_id TEXT, phone TEXT, price_level TEXT, discount NUMERIC, sales_rep TEXT, sales_rep_email TEXT, "
            "active INTEGER, locale TEXT)"
        )
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    n,
                    f"{rng.choice(NAMES)} {n}",
                    f"klient{n}@example.pl",
                    rng.choice(TAGS),
                    f"K{n:07d}",
                    f"{rng.randrange(10**9, 10**10)}",
                    f"+48 {rng.randrange(10**8, 10**9)}",
                    rng.choice(["detal", "hurt", "3"]),
                    rng.choice([0, 5, 7.5, 12.5]),
                    "Jan Kowalski",
                    "jan.kowalski@example.pl",
                    rng.choice([1, 1, 1, 0]),
                    rng.choice(["pl", "PL", "en", None]),
                )
                for n in range(1, rows + 1)
            ),
        )


def bare_fetch(connection_string: str, fetch_size: int) -> tuple[float, int]:
    """Seconds for connect + execute + fetchmany until exhausted, and the row count."""
    started = time.perf_counter()
    connection = pyodbc.connect(connection_string, autocommit=True)
    cursor = connection.cursor()
    cursor.execute(QUERY)
    count = 0
    while batch := cursor.fetchmany(fetch_size):
        count += len(batch)
    connection.close()
    return time.perf_counter() - started, count


def connector_read(connection_string: str, fetch_size: int) -> tuple[float, int]:
    """Seconds to iterate every `Record` of `OdbcConnector.records()`, and the record count."""
    source = SourceConfig(kind="odbc", connection_string=connection_string, query=QUERY, fetch_size=fetch_size)
    started = time.perf_counter()
    count = 0
    for _ in OdbcConnector(source).records():
        count += 1
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--fetch-size", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "erp.db"
        build_database(path, args.rows)
        connection_string = f"Driver=SQLite3;Database={path};StepAPI=1"
        bare_fetch(connection_string, args.fetch_size)  # warm the page cache once, untimed
        bare, full = [], []
        for _ in range(args.repeat):
            seconds, rows = bare_fetch(connection_string, args.fetch_size)
            bare.append(seconds)
            seconds, records = connector_read(connection_string, args.fetch_size)
            full.append(seconds)
            assert rows == records == args.rows, (rows, records)
    print(f"rows: {args.rows}, fetch_size: {args.fetch_size}, python {sys.version.split()[0]}, pyodbc {pyodbc.version}")
    for label, times in (("(a) bare fetchmany     ", bare), ("(b) connector.records()", full)):
        runs = ", ".join(f"{seconds:.3f}" for seconds in times)
        print(f"{label}: {runs} s  (best {min(times):.3f}, median {statistics.median(times):.3f})")
    best, median = min(full) / min(bare), statistics.median(full) / statistics.median(bare)
    print(f"ratio (b)/(a): best {best:.2f}, median {median:.2f}")


if __name__ == "__main__":
    main()
