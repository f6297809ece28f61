"""Contacts, usernames and attributes as the connectors read them: through the SQLite3 ODBC driver, psqlODBC on
PostgreSQL, and CSV exports in UTF-8 and cp1250; plus the config keys that ask for them."""

from __future__ import annotations

import datetime
import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from integrator.config import SourceConfig, config_from_dict, load_config
from integrator.connectors import make_connector
from integrator.connectors.contact_values import make_contact_reader
from integrator.errors import ConfigError, SourceError
from integrator.records import Contact, attributes_json
from tests.conftest import PG_HOST, PG_PORT, require_odbc_driver

CODES = ",".join(f"P{number:05d}" for number in range(1, 401))
"""A long comma list (Cin7-style assigned product codes): 2,399 characters, passed through as one value."""

CUSTOMERS = [
    (1, "Zakład Łódź Żółć", "biuro@zaklad.pl", "b2b", " ZLZ-1 ", "Łódź Bałuty", CODES, "2024-05-01", 1, None),
    (2, "Źdźbło Sp. z o.o.", "d@x.pl", "b2b", None, "  ", "", None, 0, "uwaga: płatność z góry"),
]  # fmt: skip
CONTACTS = [
    # customer, id, email, name, phone, active, access, locale, username, region
    (1, 10, " anna@zaklad.pl ", "Anna Żółkiewska", " +48 600 100 200 ", "1", "tak", "PL", " A-10 ", "Łódź"),
    (1, 11, None, "Bez Maila", None, "0", "1", None, None, None),
    (2, 20, "jan@x.pl", "Jan Gżegżółka", None, "tak", "nie", "en", None, "  "),
    (2, 21, "ewa@x.pl", None, None, "może", None, None, None, None),
]  # fmt: skip
CONTACTS_QUERY = (
    "SELECT customer, id, email, name, phone, active, access, locale, username, region FROM contacts ORDER BY id"
)
CONTACT_MAPPING = {"erp_id": "customer", "contact_id": "id"}
ATTRIBUTES = ["region", "codes", "since", "vip", "note"]


@pytest.fixture
def sqlite_erp(tmp_path: Path, sqlite_odbc: str) -> str:
    """Connection string of a SQLite ERP (read through the SQLite3 ODBC driver) with customers and contacts."""
    path = tmp_path / "erp.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (erp_id INTEGER, name TEXT, email TEXT, tags TEXT, username TEXT, region TEXT, "
            "codes TEXT, since DATE, vip BOOLEAN, note TEXT)"
        )
        db.execute(
            "CREATE TABLE contacts (customer INTEGER, id INTEGER, email TEXT, name TEXT, phone TEXT, active TEXT, "
            "access TEXT, locale TEXT, username TEXT, region TEXT)"
        )
        db.executemany(f"INSERT INTO customers VALUES ({', '.join('?' * 10)})", CUSTOMERS)
        db.executemany(f"INSERT INTO contacts VALUES ({', '.join('?' * 10)})", CONTACTS)
    return f"Driver={sqlite_odbc};Database={path}"


def odbc_source(connection_string: str, **options: Any) -> SourceConfig:
    options.setdefault("query", f"SELECT erp_id, name, email, tags, username, {', '.join(ATTRIBUTES)} FROM customers")
    options.setdefault("contacts_query", CONTACTS_QUERY)
    options.setdefault("contact_columns", CONTACT_MAPPING)
    options.setdefault("attributes", ATTRIBUTES)
    return SourceConfig(kind="odbc", connection_string=connection_string, connect_retries=0, **options)


# -- ODBC: SQLite3 driver --------------------------------------------------------------------------------------


def test_sqlite_contacts_read_every_column(sqlite_erp: str) -> None:
    """Every contact column is read and cleaned: int ids as text, e-mail stripped or None, the yes/no flags
    (access off, inactive, missing access = allowed), locale lower-cased, username stripped; a flag that is
    no yes/no is a problem; of the attributes, the contacts query's own one is read, and it alone."""
    connector = make_connector(odbc_source(sqlite_erp))
    assert connector.has_contacts
    anna, no_mail, jan, ewa = connector.contacts()
    assert anna == Contact(
        erp_id="1",
        contact_id="10",
        email="anna@zaklad.pl",
        name="Anna Żółkiewska",
        phone="+48 600 100 200",
        active=True,
        access=True,
        locale="pl",
        username="A-10",
        attributes=(("region", "Łódź"),),
        origin="contacts row 1",
    )
    assert (no_mail.email, no_mail.active, no_mail.access, no_mail.attributes) == (
        None,
        False,
        True,
        (("region", None),),
    )
    assert (jan.erp_id, jan.contact_id, jan.access, jan.active, jan.locale, jan.attributes) == (
        "2",
        "20",
        False,
        True,
        "en",
        (("region", None),),
    )
    assert (ewa.access, ewa.problems, ewa.origin) == (True, ("active: cannot read 'może' as yes/no",), "contacts row 4")
    assert [contact.problems for contact in (anna, no_mail, jan)] == [(), (), ()]


def test_sqlite_contacts_carry_a_keyed_digest_of_their_raw_row(sqlite_erp: str) -> None:
    """With a digest key every contact carries its row's digest: one per row, the same on every read, another
    under another key; without a key none."""
    connector = make_connector(odbc_source(sqlite_erp))
    first = [contact.digest for contact in connector.contacts(digest_key=b"reading-1")]
    assert len(set(first)) == 4 and all(len(digest) == 16 for digest in first)
    assert [contact.digest for contact in connector.contacts(digest_key=b"reading-1")] == first
    assert [contact.digest for contact in connector.contacts(digest_key=b"reading-2")] != first
    assert {contact.digest for contact in connector.contacts()} == {""}


def test_contacts_are_fetched_by_a_reader_process_that_ends_with_the_read(sqlite_erp: str) -> None:
    """The contacts query runs in a reader process of its own, as the customer query does: while contacts are
    handed out, the sync's process has a child reading them; stopping early (as `check` does) ends it."""
    import itertools
    import os

    def readers() -> set[int]:
        found = set()
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            children = Path(f"/proc/{os.getpid()}/task/{task}/children").read_text().split()
            for pid in children:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if b"read_ahead_child" in command:
                    found.add(int(pid))
        return found

    before = readers()
    contacts = make_connector(odbc_source(sqlite_erp)).contacts(digest_key=b"k")
    first = next(contacts)
    assert first.origin == "contacts row 1" and len(first.digest) == 16
    started = readers() - before
    assert len(started) == 1
    assert list(itertools.islice(contacts, 1))[0].origin == "contacts row 2"
    contacts.close()
    (reader,) = started
    assert not Path(f"/proc/{reader}").exists() or b"Z" in Path(f"/proc/{reader}/stat").read_bytes().split()[2]


def test_sqlite_customers_read_username_and_attributes(sqlite_erp: str) -> None:
    """A customer's username column and its attributes in config order: Polish text, a 2,399-character comma
    list, a date, a flag, NULL and blank text (None); `attributes_json` is their canonical JSON."""
    first, second = make_connector(odbc_source(sqlite_erp)).records()
    assert (first.username, second.username) == ("ZLZ-1", None)
    assert first.attributes == (
        ("region", "Łódź Bałuty"),
        ("codes", CODES),
        ("since", datetime.date(2024, 5, 1)),
        ("vip", True),
        ("note", None),
    )
    assert second.attributes == (
        ("region", None),
        ("codes", None),
        ("since", None),
        ("vip", False),
        ("note", "uwaga: płatność z góry"),
    )
    assert attributes_json(first.attributes) == (
        f'{{"codes":"{CODES}","note":null,"region":"Łódź Bałuty","since":"2024-05-01","vip":true}}'
    )
    assert (first.contact_id, first.contact_name, first.contact_active, first.access) == (None, None, True, True)


def test_missing_required_contact_column_is_named(sqlite_erp: str) -> None:
    """A contacts query without a required column is a source error naming it (and its mapping) and listing
    what the query returns."""
    query = "SELECT customer, email, name FROM contacts"
    connector = make_connector(odbc_source(sqlite_erp, contacts_query=query))
    with pytest.raises(SourceError) as caught:
        list(connector.contacts())
    assert str(caught.value) == (
        "the contacts query does not return the required column(s) contact_id (mapped to 'id'); "
        "it returns: customer, email, name"
    )


def test_missing_attribute_column_of_the_customer_query_is_named(sqlite_erp: str) -> None:
    """An attribute the customer query does not return is a source error naming it; the contacts query may lack
    it (its contacts then simply have none)."""
    connector = make_connector(odbc_source(sqlite_erp, attributes=["region", "credit_limit"]))
    with pytest.raises(SourceError, match=r"required column\(s\) credit_limit \(listed in \[source\] attributes\)"):
        list(connector.records())
    assert [contact.attributes for contact in connector.contacts()][0] == (("region", "Łódź"),)


def test_contacts_query_errors_name_the_contacts_query(sqlite_erp: str) -> None:
    """SQL the database refuses is reported as the contacts query's failure, with that query."""
    connector = make_connector(odbc_source(sqlite_erp, contacts_query="SELECT * FROM osoby"))
    with pytest.raises(SourceError, match=r"^the contacts query failed: .*no such table: osoby.*\n  query: SELECT"):
        list(connector.contacts())


def test_a_source_without_contacts_says_so(sqlite_erp: str, tmp_path: Path) -> None:
    """`has_contacts` is False and `contacts()` raises a config error at the call, for either connector."""
    odbc = make_connector(odbc_source(sqlite_erp, contacts_query=None, contact_columns={}))
    path = tmp_path / "c.csv"
    path.write_text("erp_id;name;email;tags\n", encoding="utf-8")
    csv = make_connector(SourceConfig(kind="csv", path=path))
    for connector in (odbc, csv):
        assert not connector.has_contacts
        with pytest.raises(ConfigError, match="^no contacts source configured"):
            connector.contacts()


def test_unreadable_contact_values_are_problems_not_errors() -> None:
    """A missing erp_id or contact_id, an unreadable access flag and a NUL character become problems (the
    contact is quarantined, never judged); a key holding a NUL is blanked."""
    columns = ["erp_id", "contact_id", "email", "access", "username", "region"]
    reader = make_contact_reader(columns, mapping={}, where="the contacts query", attributes=["region", "other"])
    keyless = reader.convert([None, "  ", "a@x.pl", "2", "u\0", "x\0y"], "contacts row 1")
    assert (keyless.erp_id, keyless.contact_id, keyless.access) == ("", "", True)
    assert keyless.problems == (
        "erp_id: missing (NULL or blank)",
        "attribute region: contains a NUL character (\\x00)",
        "contact_id: missing (NULL or blank)",
        "username: contains a NUL character (\\x00)",
        "access: cannot read '2' as yes/no",
    )
    nul_key = reader.convert([7, "k\0", "a@x.pl", "nie", None, None], "contacts row 2")
    assert (nul_key.erp_id, nul_key.contact_id, nul_key.access) == ("7", "", False)
    assert nul_key.problems == ("contact_id: contains a NUL character (\\x00)",)


# -- ODBC: PostgreSQL through psqlODBC --------------------------------------------------------------------------


@pytest.fixture
def pg_erp(pg_database: str) -> Iterator[str]:
    """psqlODBC connection string of a fresh PostgreSQL ERP with typed customers and contacts."""
    require_odbc_driver("PostgreSQL Unicode")
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname={pg_database}", autocommit=True) as db:
        db.execute(
            "CREATE TABLE customers (erp_id integer, name text, email text, tags text, username varchar(40), "
            "credit_limit numeric(12,2), terms text, codes text, since timestamp)"
        )
        db.execute(
            "CREATE TABLE contacts (customer_id integer, contact_id bigint, email text, name text, "
            "active boolean, access boolean, locale varchar(5), credit_limit numeric(12,2))"
        )
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO customers VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (1, "Zakład Łódź Żółć", "z@x.pl", "b2b", "KL-0001", Decimal("12.50"), "14 dni", CODES,
                     datetime.datetime(2024, 5, 1, 8, 30)),
                    (2, "Źdźbło", "d@x.pl", "b2b", None, None, None, None, None),
                ],
            )  # fmt: skip
            cursor.executemany(
                "INSERT INTO contacts VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (1, 9_000_000_001, "Anna@Zaklad.pl", "Anna Żółkiewska", True, True, "PL", Decimal("1000.00")),
                    (1, 9_000_000_002, None, "Bez Maila", False, None, None, None),
                    (2, 9_000_000_003, "jan@x.pl", "Jan", True, False, "en", Decimal("0.10")),
                ],
            )
    yield f"Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Database={pg_database};Uid=postgres;"


@pytest.mark.postgres
def test_postgresql_contacts_and_decimal_attributes(pg_erp: str) -> None:
    """psqlODBC: bigint contact ids as text, boolean flags (NULL access = allowed), Polish names; numeric
    attributes stay exact decimals ("12.50", not 12.5) on customers and contacts, NULL is null, a timestamp
    is ISO 8601 in the JSON."""
    source = SourceConfig(
        kind="odbc",
        connection_string=pg_erp,
        connect_retries=0,
        query="SELECT erp_id, name, email, tags, username, credit_limit, terms, codes, since FROM customers "
        "ORDER BY erp_id",
        contacts_query="SELECT customer_id AS erp_id, contact_id, email, name, active, access, locale, credit_limit "
        "FROM contacts ORDER BY contact_id",
        attributes=["credit_limit", "terms", "codes", "since"],
    )
    connector = make_connector(source)
    first, second = connector.records()
    assert (first.username, second.username) == ("KL-0001", None)
    assert first.attributes == (
        ("credit_limit", Decimal("12.50")),
        ("terms", "14 dni"),
        ("codes", CODES),
        ("since", datetime.datetime(2024, 5, 1, 8, 30)),
    )
    assert attributes_json(first.attributes) == (
        f'{{"codes":"{CODES}","credit_limit":"12.50","since":"2024-05-01T08:30:00","terms":"14 dni"}}'
    )
    assert attributes_json(second.attributes) == '{"codes":null,"credit_limit":null,"since":null,"terms":null}'
    anna, no_mail, jan = connector.contacts()
    assert (anna.erp_id, anna.contact_id, anna.email, anna.name, anna.active, anna.access, anna.locale) == (
        "1",
        "9000000001",
        "Anna@Zaklad.pl",
        "Anna Żółkiewska",
        True,
        True,
        "pl",
    )
    assert anna.attributes == (("credit_limit", Decimal("1000.00")),)
    assert (no_mail.email, no_mail.active, no_mail.access, no_mail.attributes) == (
        None,
        False,
        True,
        (("credit_limit", None),),
    )
    assert (jan.access, attributes_json(jan.attributes), jan.origin) == (
        False,
        '{"credit_limit":"0.10"}',
        "contacts row 3",
    )
    assert [contact.problems for contact in (anna, no_mail, jan)] == [(), (), ()]


# -- CSV --------------------------------------------------------------------------------------------------------


def write(path: Path, lines: list[str], encoding: str) -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "cp1250"])
def test_csv_contacts_and_attributes_in_either_encoding(tmp_path: Path, encoding: str) -> None:
    """A contacts export read with the customer file's delimiter and encoding and its own column mapping:
    Polish text intact, yes/no spellings, origins naming the line and file, a line with too few fields kept
    with a problem, blank lines skipped; attributes on customers and on contacts that have the column."""
    customers = write(
        tmp_path / "kontrahenci.csv",
        ["Kod;Nazwa;E-mail;Cechy;Login;region", "K1;Zakład Łódź Żółć;z@x.pl;b2b; zlz ;Śląsk"],
        encoding,
    )
    contacts = write(
        tmp_path / "osoby.csv",
        [
            "Kontrahent;Id;E-mail;Imię i nazwisko;Telefon;Aktywna;Dostęp;Język;Login;region",
            "K1;1;anna@zaklad.pl;Anna Żółkiewska;+48 600;Tak;TAK;PL;anna;Małopolska",
            "",
            "K1;2;;Zbigniew Gżegżółka;;nie;N;;;",
            "K1;3;broken@x.pl",
        ],
        encoding,
    )
    source = SourceConfig(
        kind="csv",
        path=customers,
        contacts_path=contacts,
        encoding=encoding,
        columns={"erp_id": "Kod", "name": "Nazwa", "email": "E-mail", "tags": "Cechy", "username": "Login"},
        contact_columns={
            "erp_id": "Kontrahent",
            "contact_id": "Id",
            "email": "E-mail",
            "name": "Imię i nazwisko",
            "phone": "Telefon",
            "active": "Aktywna",
            "access": "Dostęp",
            "locale": "Język",
            "username": "Login",
        },
        attributes=["region"],
    )
    connector = make_connector(source)
    (customer,) = connector.records()
    assert (customer.username, customer.attributes) == ("zlz", (("region", "Śląsk"),))
    anna, zbigniew, broken = connector.contacts()
    assert anna == Contact(
        erp_id="K1",
        contact_id="1",
        email="anna@zaklad.pl",
        name="Anna Żółkiewska",
        phone="+48 600",
        active=True,
        access=True,
        locale="pl",
        username="anna",
        attributes=(("region", "Małopolska"),),
        origin="contacts line 2 of osoby.csv",
    )
    assert (zbigniew.name, zbigniew.email, zbigniew.active, zbigniew.access, zbigniew.origin) == (
        "Zbigniew Gżegżółka",
        None,
        False,
        False,
        "contacts line 4 of osoby.csv",
    )
    assert (broken.email, broken.problems) == ("broken@x.pl", ("line has 3 fields, the header has 10",))


def test_csv_contacts_missing_column_and_file(tmp_path: Path) -> None:
    """A contacts export without a required column names it and the file; a missing export is a source error."""
    customers = write(tmp_path / "c.csv", ["erp_id;name;email;tags"], "utf-8")
    contacts = write(tmp_path / "osoby.csv", ["erp_id;email;Imię"], "utf-8")
    connector = make_connector(SourceConfig(kind="csv", path=customers, contacts_path=contacts))
    with pytest.raises(SourceError) as caught:
        list(connector.contacts())
    assert str(caught.value) == (
        f"the contacts CSV file {contacts} (its header row) does not return the required column(s) contact_id; "
        "it returns: erp_id, email, Imię"
    )
    contacts.unlink()
    with pytest.raises(SourceError, match=f"^the contacts CSV file {contacts} does not exist$"):
        list(connector.contacts())


# -- attributes_json ---------------------------------------------------------------------------------------------


def test_attributes_json_is_canonical_and_exact() -> None:
    """Keys sorted, no spaces, Polish text as is; decimals as exact strings (trailing zeros kept, no float round
    trip), dates and datetimes in ISO 8601, numbers and flags as JSON's own; no attributes is None."""
    pairs = (
        ("limit", Decimal("12.50")),
        ("tiny", Decimal("0.1000000000000000055511151231257827")),
        ("od", datetime.date(2024, 2, 29)),
        ("zmiana", datetime.datetime(2024, 5, 1, 8, 30, 5)),
        ("uwagi", 'Zażółć gęślą jaźń "cytat"'),
        ("pusty", None),
        ("vip", False),
        ("sztuk", 3),
        ("waga", 2.5),
    )
    assert attributes_json(pairs) == (
        '{"limit":"12.50","od":"2024-02-29","pusty":null,"sztuk":3,'
        '"tiny":"0.1000000000000000055511151231257827","uwagi":"Zażółć gęślą jaźń \\"cytat\\"",'
        '"vip":false,"waga":2.5,"zmiana":"2024-05-01T08:30:05"}'
    )
    assert attributes_json(()) is None


# -- config --------------------------------------------------------------------------------------------------


def test_contacts_keys_belong_to_their_kind() -> None:
    """contacts_query is for odbc and contacts_path for csv; the error names the key and the other one."""
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"source": {"kind": "csv", "path": "c.csv", "contacts_query": "SELECT 1"}})
    assert "[source] `contacts_query` is for kind = 'odbc'; a csv source reads contacts from `contacts_path`" in str(
        caught.value
    )
    with pytest.raises(ConfigError, match=r"\[source\] `contacts_path` is for kind = 'csv'"):
        config_from_dict({"source": {"kind": "odbc", "dsn": "ERP", "query": "SELECT 1", "contacts_path": "o.csv"}})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("email", "'email' is a record or contact column; an attribute must be another column"),
        ("Contact_ID", "'Contact_ID' is a record or contact column; an attribute must be another column"),
        ("limit kredytu", "'limit kredytu' is not a plain column name"),
    ],
)
def test_attribute_names_are_plain_and_not_record_columns(name: str, message: str) -> None:
    """An attribute that is a record or contact column (in any case) or not a plain name is refused, naming
    [source.attributes]."""
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"source": {"kind": "odbc", "dsn": "ERP", "query": "SELECT 1", "attributes": [name]}})
    assert f"[source.attributes] {message}" in str(caught.value)


def test_contacts_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    """A relative contacts_path is taken from the config file's folder, like path; login is read."""
    folder = tmp_path / "konfiguracja"
    folder.mkdir()
    config_file = folder / "config.toml"
    config_file.write_text(
        '[source]\nkind = "csv"\npath = "eksport/kontrahenci.csv"\ncontacts_path = "eksport/osoby.csv"\n'
        'attributes = ["region"]\n[accounts]\nlogin = "username"\n',
        encoding="utf-8",
    )
    config = load_config(config_file)
    assert config.source.contacts_path == folder.resolve() / "eksport" / "osoby.csv"
    assert (config.source.attributes, config.accounts.login) == (["region"], "username")


def test_contact_columns_keys_are_checked(tmp_path: Path) -> None:
    """A [source.contact_columns] key that is not a contact column is a config error naming it."""
    path = write(tmp_path / "c.csv", ["erp_id;name;email;tags"], "utf-8")
    source = SourceConfig(kind="csv", path=path, contacts_path=path, contact_columns={"mail": "E-mail"})
    with pytest.raises(ConfigError, match=r"\[source.contact_columns\] 'mail' is not a contact column"):
        make_connector(source)


def test_attributes_json_writes_non_finite_floats_as_text() -> None:
    """NaN and infinities are not JSON: stored as their text, so a portal's strict parser reads the object."""
    text = attributes_json((("limit", float("nan")), ("max", float("inf")), ("min", float("-inf")), ("ok", 1.5)))
    assert text == '{"limit":"nan","max":"inf","min":"-inf","ok":1.5}'
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in {text}"))
