"""The ODBC connector through real drivers: SQLite3 ODBC, psqlODBC (PostgreSQL) and MariaDB Connector/ODBC."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from integrator.config import SourceConfig
from integrator.connectors import OdbcConnector, make_connector
from integrator.connectors.odbc import available_presets, load_preset, redact_secrets
from integrator.errors import ConfigError, SourceError, TransientSourceError
from tests.conftest import MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, require_odbc_driver

COLUMNS = (
    "erp_id, name, email, tags, symbol, tax_id, phone, price_level, discount, sales_rep, sales_rep_email, "
    "active, locale"
)
SECRET = "Tajne;Hasło}123"
SECRET_IN_STRING = "PWD={Tajne;Hasło}}123}"
CUSTOMERS = [
    (1, "Zakład Łódź Żółć", "biuro@zaklad.pl", "B2B, Hurt", "ZLZ", "7251234567", "+48 42 000", "3", "12.50",
     "Jan Kowalski", "jan@firma.pl", 1, "PL"),
    (2, "  Pan Gżegżółka ", " GZEG@x.pl ", None, None, None, None, None, None, None, None, 0, None),
    (3, "Śnieżka Sp. z o.o.", "sniezka@x.pl", "b2b", None, None, None, None, "abc", None, None, 7, "en"),
]  # fmt: skip


def odbc_source(
    connection_string: str, query: str = f"SELECT {COLUMNS} FROM customers", **options: Any
) -> SourceConfig:
    options.setdefault("connect_retries", 0)
    return SourceConfig(kind="odbc", connection_string=connection_string, query=query, **options)


def sqlite_customers(path: Path, rows: list[tuple[Any, ...]] = CUSTOMERS) -> Path:
    """A SQLite file with a `customers` table holding the record columns."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (erp_id INTEGER, name TEXT, email TEXT, tags TEXT, symbol TEXT, tax_id TEXT, "
            "phone TEXT, price_level TEXT, discount TEXT, sales_rep TEXT, sales_rep_email TEXT, active INTEGER, "
            "locale TEXT)"
        )
        db.executemany(f"INSERT INTO customers VALUES ({', '.join('?' * 13)})", rows)
    return path


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_odbc: str) -> str:
    """Connection string of a SQLite database (read through the SQLite3 ODBC driver) with three customers."""
    path = sqlite_customers(tmp_path / "erp.db")
    return f"Driver={sqlite_odbc};Database={path};StepAPI=1"


@pytest.fixture
def sqlite_tag_rows(tmp_path: Path, sqlite_odbc: str) -> str:
    """Connection string of a SQLite database with a customers table and a one-row-per-tag `customer_tags`."""
    path = tmp_path / "tags.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT, email TEXT)")
        db.execute("CREATE TABLE customer_tags (customer_id INTEGER, tag TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?)", [(1, "Ćma", "c@x.pl"), (2, "Ósemka", "o@x.pl")])
        db.executemany("INSERT INTO customer_tags VALUES (?, ?)", [(2, "b2b"), (1, "B2B"), (2, "Hurt "), (1, "vip")])
    return f"Driver={sqlite_odbc};Database={path}"


ROWS_QUERY = (
    "SELECT c.id AS erp_id, c.name, c.email, t.tag AS tags FROM customers c "
    "LEFT JOIN customer_tags t ON t.customer_id = c.id"
)


def test_column_layout_reads_polish_names_and_every_column(sqlite_db: str) -> None:
    """Every record column is read and cleaned; Polish diacritics survive the ODBC round trip."""
    first, second, third = make_connector(odbc_source(sqlite_db)).records()
    assert first == first._replace(
        erp_id="1",
        name="Zakład Łódź Żółć",
        email="biuro@zaklad.pl",
        tags=frozenset({"b2b", "hurt"}),
        symbol="ZLZ",
        tax_id="7251234567",
        price_level="3",
        discount=Decimal("12.50"),
        sales_rep="Jan Kowalski",
        active=True,
        locale="pl",
        problems=(),
        origin="row 1",
    )
    assert (second.name, second.email, second.tags, second.active) == ("Pan Gżegżółka", "GZEG@x.pl", frozenset(), False)
    assert third.origin == "row 3"


def test_null_and_garbage_values_become_problems(sqlite_db: str) -> None:
    """Unreadable values are reported in `problems` with the field at its default; nothing raises."""
    third = list(make_connector(odbc_source(sqlite_db)).records())[2]
    assert (third.discount, third.active) == (None, True)
    assert third.problems == ("discount: cannot read 'abc' as a number", "active: cannot read 7 as yes/no")
    query = "SELECT NULL AS erp_id, name, email, tags FROM customers WHERE erp_id = 1"
    (record,) = make_connector(odbc_source(sqlite_db, query)).records()
    assert (record.erp_id, record.problems) == ("", ("erp_id: missing (NULL or blank)",))


def test_only_narrows_the_query_to_one_customer(sqlite_db: str) -> None:
    """`only` returns just that customer, typed to match a numeric erp_id column; an impossible id finds none."""
    connector = make_connector(odbc_source(sqlite_db, f"SELECT {COLUMNS} FROM customers ORDER BY erp_id;"))
    assert [r.name for r in connector.records(only="2")] == ["Pan Gżegżółka"]
    assert list(connector.records(only="999")) == []
    assert list(connector.records(only="K-1")) == []


def test_rows_layout_groups_tags_per_customer(sqlite_tag_rows: str) -> None:
    """One row per (customer, tag), ordered by erp_id, becomes one record per customer with every tag."""
    source = odbc_source(sqlite_tag_rows, ROWS_QUERY + " ORDER BY c.id", tags_layout="rows", fetch_size=1)
    records = list(make_connector(source).records())
    assert [(r.erp_id, r.name, r.tags) for r in records] == [
        ("1", "Ćma", {"b2b", "vip"}),
        ("2", "Ósemka", {"b2b", "hurt"}),
    ]
    (only,) = make_connector(source).records(only="2")
    assert only.tags == {"b2b", "hurt"}


def test_rows_layout_not_ordered_asks_for_order_by(sqlite_tag_rows: str) -> None:
    """Rows of a customer that reappear after another customer's raise SourceError asking for ORDER BY erp_id."""
    query = ROWS_QUERY + " ORDER BY t.rowid"  # 2, 1, 2, 1: interleaved
    with pytest.raises(SourceError, match=r"erp_id '2' appears again at row 3.*add ORDER BY erp_id"):
        list(make_connector(odbc_source(sqlite_tag_rows, query, tags_layout="rows")).records())


def test_missing_required_column_lists_what_the_query_returns(sqlite_db: str) -> None:
    """A query without a required column fails naming it and listing the columns it does return."""
    connector = make_connector(odbc_source(sqlite_db, "SELECT erp_id, name, email AS mail FROM customers"))
    with pytest.raises(SourceError) as caught:
        list(connector.records())
    assert "required column(s) email, tags;" in str(caught.value)
    assert "it returns: erp_id, name, mail" in str(caught.value)


def test_column_mapping_applies_to_queries(sqlite_db: str) -> None:
    """`columns` maps record columns to the query's own column names, as for CSV."""
    query = "SELECT erp_id AS Kod, name AS Nazwa, email, tags AS Cechy FROM customers"
    source = odbc_source(sqlite_db, query, columns={"erp_id": "Kod", "name": "Nazwa", "tags": "cechy"})
    record = next(make_connector(source).records())
    assert (record.erp_id, record.name, record.tags) == ("1", "Zakład Łódź Żółć", {"b2b", "hurt"})


def test_driver_not_installed_lists_installed_drivers(tmp_path: Path) -> None:
    """A driver name that is not installed fails saying so and listing the installed drivers."""
    import pyodbc

    connector = make_connector(odbc_source(f"Driver={{Sybase 9000}};Database={tmp_path / 'x.db'}"))
    with pytest.raises(SourceError) as caught:
        list(connector.records())
    assert "the ODBC driver 'Sybase 9000' is not installed" in str(caught.value)
    assert ", ".join(pyodbc.drivers()) in str(caught.value)


def test_registered_driver_without_library_says_so(tmp_path: Path) -> None:
    """A driver listed in odbcinst.ini whose library is missing is told apart from one not installed at all."""
    import pyodbc

    broken = [d for d in pyodbc.drivers() if d == "SQLite"]  # this machine registers SQLite 2 without its .so
    if not broken:
        pytest.skip("no registered-but-missing ODBC driver on this machine")
    with pytest.raises(SourceError, match="'SQLite' is registered .* but its library cannot be loaded"):
        list(make_connector(odbc_source(f"Driver=SQLite;Database={tmp_path / 'x.db'}")).records())


def test_undefined_dsn_is_named() -> None:
    """A DSN that odbc.ini does not define fails naming the DSN."""
    source = SourceConfig(kind="odbc", dsn="erp_nexo_missing", query="SELECT 1", connect_retries=0)
    with pytest.raises(SourceError, match="DSN\\) 'erp_nexo_missing' is not defined"):
        list(make_connector(source).records())


def test_bad_sql_carries_the_driver_message(sqlite_db: str) -> None:
    """Broken SQL fails as 'the source query failed' with the driver's own message and the query."""
    connector = make_connector(odbc_source(sqlite_db, "SELECT erp_id FROM klienci"))
    with pytest.raises(SourceError) as caught:
        list(connector.records())
    assert str(caught.value).startswith("the source query failed: ")
    assert "no such table: klienci" in str(caught.value)
    assert "query: SELECT erp_id FROM klienci" in str(caught.value)


def test_password_never_shown(sqlite_db: str, tmp_path: Path) -> None:
    """The connection string's password appears in no error message and not in describe()."""
    with_secret = f"{sqlite_db};{SECRET_IN_STRING}"
    bad_sql = make_connector(odbc_source(with_secret, "SELECT nope FROM customers"))
    assert "PWD=***" in bad_sql.describe()
    shown = [bad_sql.describe()]
    for connector in (
        bad_sql,
        make_connector(odbc_source(f"Driver={{No Such Driver}};Server=x;{SECRET_IN_STRING}")),
        make_connector(odbc_source(f"DSN=missing_dsn;Uid=sa;{SECRET_IN_STRING.replace('PWD', 'password')}")),
    ):
        with pytest.raises(SourceError) as caught:
            list(connector.records())
        shown.append(str(caught.value))
    for text in shown:
        assert not any(piece in text for piece in SECRET.split(";")), text


def test_redaction_of_driver_messages() -> None:
    """Any PWD=/Password= value is masked, braced or not, in any case, plus the literal secret anywhere."""
    text = "login failed for Uid=sa;pwd={a;b}}c};PASSWORD = hunter2;Server=x; echo: hunter2"
    assert redact_secrets(text, ("hunter2",)) == "login failed for Uid=sa;pwd=***;PASSWORD = ***;Server=x; echo: ***"


def test_transient_connect_errors_are_retried_and_logged_without_password() -> None:
    """A refused connection is retried connect_retries times with logged backoff, then raised as transient."""
    require_odbc_driver("PostgreSQL Unicode")
    source = odbc_source(
        f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=1;Database=x;Uid=postgres;{SECRET_IN_STRING}",
        connect_retries=2,
        connect_timeout=2,
    )
    with capture_logs() as logs, pytest.raises(TransientSourceError) as caught:
        list(OdbcConnector(source, retry_wait=0.01).records())
    retries = [entry for entry in logs if entry["event"] == "odbc_connect_retry"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert "cannot connect to the ERP database" in str(caught.value)
    assert not any(piece in f"{caught.value} {logs}" for piece in SECRET.split(";"))


def test_rows_are_streamed_not_read_up_front(tmp_path: Path, sqlite_odbc: str) -> None:
    """Records arrive while the driver has yet to compute later rows: a row that fails at 101 fails only later."""
    path = sqlite_customers(
        tmp_path / "big.db", [(n, f"Firma {n}", f"f{n}@x.pl", "b2b", *[None] * 9) for n in range(1, 1001)]
    )
    # SQLite evaluates the CASE lazily, row by row; abs(-2**63) overflows, so row 101 cannot be produced.
    query = (
        "SELECT erp_id, name, email, CASE WHEN erp_id > 100 THEN abs(-9223372036854775808) ELSE tags END AS tags "
        "FROM customers"
    )
    source = odbc_source(f"Driver={sqlite_odbc};Database={path};StepAPI=1", query, fetch_size=10)
    records = make_connector(source).records()
    assert [r.erp_id for r in itertools.islice(records, 5)] == ["1", "2", "3", "4", "5"]
    with pytest.raises(SourceError, match="failed after 100 rows: .*integer overflow"):
        list(records)


def test_unknown_preset_lists_valid_presets(sqlite_db: str) -> None:
    """A preset with no .sql file is a ConfigError naming the valid presets."""
    with pytest.raises(ConfigError) as caught:
        make_connector(SourceConfig(kind="odbc", connection_string=sqlite_db, preset="subiekt_nexo_11"))
    assert "preset 'subiekt_nexo_11' does not exist" in str(caught.value)
    valid = ", ".join(available_presets()) or "(none are shipped yet)"
    assert f"valid presets: {valid}" in str(caught.value)


def test_preset_files_load_with_their_options(tmp_path: Path) -> None:
    """A dropped-in preset file is found by name and its ${options} are filled, every one required and known."""
    (tmp_path / "demo.sql").write_text("SELECT * FROM ${table} WHERE kind = ${kind}", encoding="utf-8")
    assert available_presets(tmp_path) == ["demo"]
    assert load_preset("demo", {"table": "kh__Kontrahent", "kind": 2}, tmp_path) == (
        "SELECT * FROM kh__Kontrahent WHERE kind = 2"
    )
    with pytest.raises(ConfigError) as caught:
        load_preset("demo", {"tabel": "x", "kind": 2}, tmp_path)
    assert "'tabel' is not an option of preset 'demo'" in str(caught.value)
    assert "preset 'demo' needs 'table'" in str(caught.value)


def test_presets_named_in_the_example_config_are_shipped(tmp_path: Path) -> None:
    """config.example.toml shows only what works today: every `preset = "…"` it names (set or commented out) is
    a shipped preset, and a consultant who uncomments it gets a config that loads and a connector."""
    import re
    import tomllib

    from integrator.config import load_config

    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    text = example.read_text(encoding="utf-8")
    lines = re.findall(r"^#? ?preset = (.+)$", text, re.MULTILINE)
    assert lines, "the example no longer documents the `preset` key"
    named = []
    for value in lines:
        try:
            named.append(tomllib.loads(f"preset = {value}")["preset"])
        except tomllib.TOMLDecodeError:  # a placeholder such as <name>, not a preset's name
            continue
    assert [name for name in named if name not in available_presets()] == []
    for name in named:
        config = re.sub(r"^query = .*$", f'preset = "{name}"', text, count=1, flags=re.MULTILINE)
        (tmp_path / "config.toml").write_text(config, encoding="utf-8")
        make_connector(load_config(tmp_path / "config.toml").source)


# -- PostgreSQL through psqlODBC -----------------------------------------------------------------------------


@pytest.fixture
def pg_customers(pg_database: str) -> Iterator[str]:
    """psqlODBC connection string of a fresh PostgreSQL database with customers and one-row-per-tag tags."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}", autocommit=True) as db:
        db.execute(
            "CREATE TABLE customers (erp_id integer, name text, email text, tags text, discount numeric(5,2), "
            "active boolean)"
        )
        db.execute("CREATE TABLE customer_tags (customer_id integer, tag text)")
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO customers VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (1, "Zakład Łódź Żółć", "z@x.pl", "b2b", Decimal("12.5"), True),
                    (2, "Źdźbło", "d@x.pl", None, None, False),
                ],
            )
            cursor.executemany("INSERT INTO customer_tags VALUES (%s, %s)", [(1, "B2B"), (1, "vip"), (2, "hurt")])
    yield f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Database={pg_database};Uid=postgres;"


@pytest.mark.postgres
def test_postgresql_column_and_rows_layouts(pg_customers: str) -> None:
    """psqlODBC reads Polish text, numeric and boolean columns, one-row-per-tag groups, and `only` on an int id."""
    query = "SELECT erp_id, name, email, tags, discount, active FROM customers ORDER BY erp_id"
    with capture_logs() as logs:
        first, second = make_connector(odbc_source(pg_customers, query)).records()
    assert (first.name, first.discount, first.active, second.name, second.active) == (
        "Zakład Łódź Żółć",
        Decimal("12.50"),
        True,
        "Źdźbło",
        False,
    )
    # psqlODBC refuses pyodbc's query timeout attribute: the read goes on and says so in the log.
    assert any(entry["event"] == "odbc_query_timeout_unsupported" for entry in logs)
    rows_query = (
        "SELECT c.erp_id, c.name, c.email, t.tag AS tags FROM customers c "
        "LEFT JOIN customer_tags t ON t.customer_id = c.erp_id ORDER BY c.erp_id"
    )
    connector = make_connector(odbc_source(pg_customers, rows_query, tags_layout="rows"))
    assert [(r.erp_id, r.tags) for r in connector.records()] == [("1", {"b2b", "vip"}), ("2", {"hurt"})]
    assert [r.name for r in connector.records(only="2")] == ["Źdźbło"]


@pytest.mark.postgres
def test_postgresql_bad_sql(pg_customers: str) -> None:
    """A PostgreSQL error reaches the consultant as 'the source query failed' with the server's message."""
    with pytest.raises(SourceError, match=r"the source query failed: .*column \"nip\" does not exist"):
        list(make_connector(odbc_source(pg_customers, "SELECT erp_id, nip FROM customers")).records())


@pytest.mark.postgres
def test_postgresql_lost_connection_mid_read(pg_database: str) -> None:
    """A backend terminated mid-read turns into a SourceError saying the connection was lost, never a short list."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    dsn = f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            "CREATE TABLE customers AS SELECT n AS erp_id, 'Firma ' || n AS name, 'f' || n || '@x.pl' AS email, "
            "'b2b' AS tags FROM generate_series(1, 20000) AS n"
        )
    # UseDeclareFetch: psqlODBC would otherwise buffer the whole result at execute(), leaving nothing to lose.
    connection_string = (
        f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Database={pg_database};Uid=postgres;"
        "UseDeclareFetch=1;Fetch=50"
    )
    source = odbc_source(
        connection_string, "SELECT erp_id, name, email, tags FROM customers ORDER BY erp_id", fetch_size=50
    )
    records = make_connector(source).records()
    assert len(list(itertools.islice(records, 10))) == 10
    with psycopg.connect(dsn, autocommit=True) as killer:
        killed = killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (pg_database,),
        ).fetchall()
    assert killed == [(True,)]
    with pytest.raises(SourceError, match="lost connection while reading the source") as caught:
        for _ in records:
            pass
    assert isinstance(caught.value, TransientSourceError)


# -- MariaDB through MariaDB Connector/ODBC ------------------------------------------------------------------


@pytest.fixture
def mariadb_customers(mariadb_database: str) -> str:
    """MariaDB ODBC connection string of a fresh database with a utf8mb4 customers table."""
    require_odbc_driver("MariaDB Unicode")
    import pymysql

    db = pymysql.connect(
        host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="", database=mariadb_database, charset="utf8mb4"
    )
    try:
        with db.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE customers (erp_id VARCHAR(20), name VARCHAR(100), email VARCHAR(100), tags VARCHAR(100), "
                "discount DECIMAL(5,2), active TINYINT(1), locale CHAR(2))"
            )
            cursor.executemany(
                "INSERT INTO customers VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    ("K-1", "Zakład Łódź Żółć", "z@x.pl", "b2b;vip", Decimal("7.25"), 1, "PL"),
                    ("K-2", "Gęś Sp. j.", "g@x.pl", "", None, 0, None),
                ],
            )
        db.commit()
    finally:
        db.close()
    return (
        f"Driver={{MariaDB Unicode}};Server={MARIADB_HOST};Port={MARIADB_PORT};Database={mariadb_database};"
        "User=root;Password=;"
    )


@pytest.mark.mariadb
def test_mariadb_reads_records_and_only(mariadb_customers: str) -> None:
    """MariaDB ODBC reads Polish text, decimals and tinyint flags with a custom tag separator, and `only`."""
    query = "SELECT erp_id, name, email, tags, discount, active, locale FROM customers ORDER BY erp_id"
    connector = make_connector(odbc_source(mariadb_customers, query, tag_separator=";"))
    first, second = connector.records()
    assert (first.erp_id, first.name, first.tags, first.discount, first.locale) == (
        "K-1",
        "Zakład Łódź Żółć",
        {"b2b", "vip"},
        Decimal("7.25"),
        "pl",
    )
    assert (second.name, second.tags, second.active) == ("Gęś Sp. j.", frozenset(), False)
    assert [r.name for r in connector.records(only="K-2")] == ["Gęś Sp. j."]


@pytest.mark.mariadb
def test_mariadb_bad_sql(mariadb_customers: str) -> None:
    """A MariaDB error reaches the consultant as 'the source query failed' with the server's message."""
    with pytest.raises(SourceError, match="the source query failed: .*Unknown column 'nip'"):
        list(make_connector(odbc_source(mariadb_customers, "SELECT erp_id, nip FROM customers")).records())


def test_driver_streaming_settings_are_added_unless_given() -> None:
    """Drivers that buffer whole results by default get their streaming setting; an explicit one is kept."""
    from integrator.config import SourceConfig
    from integrator.connectors.odbc import OdbcConnector

    def effective(connection_string: str) -> str:
        source = SourceConfig(kind="odbc", connection_string=connection_string, query="SELECT 1", fetch_size=700)
        return OdbcConnector(source).connection_string

    assert effective("Driver=SQLite3;Database=/x.db").endswith(";StepAPI=1")
    assert effective("Driver=SQLite3;StepAPI=0;Database=/x.db") == "Driver=SQLite3;StepAPI=0;Database=/x.db"
    assert effective("Driver={PostgreSQL Unicode};Server=h;").endswith(";UseDeclareFetch=1;Fetch=700")
    assert effective("DRIVER={MariaDB Unicode};Server=h").endswith(";NO_CACHE=1")
    mssql = "Driver={ODBC Driver 18 for SQL Server};Server=h"
    assert effective(mssql) == mssql
