"""The shared row-to-Record conversion: cleaning, parsing, problems instead of exceptions, column resolution."""

from __future__ import annotations

import marshal
import pickle
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from integrator.connectors.values import RowDigester, check_column_mapping, make_row_reader, normalize_tag
from integrator.errors import ConfigError, SourceError
from integrator.records import RECORD_COLUMNS, Record

BASIC = ["erp_id", "name", "email", "tags"]


def convert(columns: Sequence[str], row: Sequence[Any], **options: Any) -> Record:
    options.setdefault("mapping", {})
    options.setdefault("tag_separator", ",")
    reader = make_row_reader(columns, where="the test query", **options)
    return reader.convert(row, "row 1")


def test_strings_are_stripped_and_blank_means_none() -> None:
    """Surrounding whitespace is removed and an empty or blank string becomes None."""
    record = convert(BASIC + ["phone", "symbol"], [" 7 ", "  Zakład Łódź Żółć ", "", "b2b", "   ", "\tK-7\n"])
    assert (record.erp_id, record.name, record.email, record.phone, record.symbol) == (
        "7",
        "Zakład Łódź Żółć",
        None,
        None,
        "K-7",
    )
    assert record.problems == ()
    assert record.origin == "row 1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(12, "12"), (12.0, "12"), (Decimal("12.00"), "12"), ("  A-12 ", "A-12"), (12.5, "12.5")],
)
def test_erp_id_becomes_text(raw: Any, expected: str) -> None:
    """An erp_id read as a number is the same text key however the driver typed it."""
    assert convert(BASIC, [raw, "n", "e@x.pl", None]).erp_id == expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_erp_id_is_a_problem_not_an_exception(raw: Any) -> None:
    """A NULL or blank erp_id yields a record with erp_id "" and a problem, so the sync quarantines it."""
    record = convert(BASIC, [raw, "Firma", "e@x.pl", "b2b"])
    assert record.erp_id == ""
    assert record.problems == ("erp_id: missing (NULL or blank)",)


def test_tags_are_split_and_normalised() -> None:
    """Tags split on the separator, lose all whitespace, are case-folded, and empty pieces are dropped."""
    record = convert(BASIC, ["1", "n", "e", " B2B , Hurt Detal,, ,VIP "])
    assert record.tags == frozenset({"b2b", "hurtdetal", "vip"})
    assert normalize_tag(" Straße ") == "strasse"


def test_tag_separator_and_null_tags() -> None:
    """A custom separator is honoured and a NULL tags column means no tags."""
    assert convert(BASIC, ["1", "n", "e", "b2b|x,y"], tag_separator="|").tags == frozenset({"b2b", "x,y"})
    assert convert(BASIC, ["1", "n", "e", None]).tags == frozenset()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, True),
        ("", True),
        (1, True),
        (0, False),
        (True, True),
        (False, False),
        (Decimal("1"), True),
        ("1", True),
        ("0", False),
        ("true", True),
        ("False", False),
        ("T", True),
        ("f", False),
        ("yes", True),
        ("NO", False),
        ("y", True),
        ("n", False),
        ("Tak", True),
        ("NIE", False),
        ("tAk", True),
    ],
)
def test_active_accepts_yes_no_spellings(raw: Any, expected: bool) -> None:
    """`active` reads 1/0, true/false, t/f, yes/no, y/n, tak/nie in any case, bools and numbers; NULL is active."""
    record = convert(BASIC + ["active"], ["1", "n", "e", "b2b", raw])
    assert record.active is expected
    assert record.problems == ()


def test_missing_active_column_means_active() -> None:
    """A source without an `active` column reports every customer active."""
    assert convert(BASIC, ["1", "n", "e", "b2b"]).active is True


@pytest.mark.parametrize("raw", ["maybe", 2, "-1"])
def test_unreadable_active_is_a_problem(raw: Any) -> None:
    """An `active` value that is not a yes/no keeps the default and names the value in `problems`."""
    record = convert(BASIC + ["active"], ["1", "n", "e", "b2b", raw])
    assert record.active is True
    assert record.problems == (f"active: cannot read {raw!r} as yes/no",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12,5", Decimal("12.5")),
        ("12.5", Decimal("12.5")),
        (" 7 % ", Decimal("7")),
        (5, Decimal(5)),
        (5.5, Decimal("5.5")),
        (Decimal("3.25"), Decimal("3.25")),
        (None, None),
        ("", None),
    ],
)
def test_discount_reads_decimals_with_either_comma(raw: Any, expected: Decimal | None) -> None:
    """Discounts become Decimal, from numbers or text with a Polish decimal comma; blank means none."""
    record = convert(BASIC + ["discount"], ["1", "n", "e", "b2b", raw])
    assert record.discount == expected
    assert record.problems == ()


@pytest.mark.parametrize("raw", ["abc", "NaN", "1,2,3"])
def test_unreadable_discount_is_a_problem(raw: str) -> None:
    """A discount that is not a number leaves discount None and says so in `problems`."""
    record = convert(BASIC + ["discount"], ["1", "n", "e", "b2b", raw])
    assert record.discount is None
    assert record.problems == (f"discount: cannot read {raw!r} as a number",)


def test_several_problems_are_all_reported() -> None:
    """Every unreadable value of a row is listed, not just the first."""
    record = convert(BASIC + ["active", "discount"], [None, "n", "e", "b2b", "maybe", "abc"])
    assert record.problems == (
        "erp_id: missing (NULL or blank)",
        "discount: cannot read 'abc' as a number",
        "active: cannot read 'maybe' as yes/no",
    )


def test_nul_characters_are_problems_naming_their_fields() -> None:
    """A NUL in text is a problem (the record is quarantined); in the erp_id it leaves the record keyless."""
    record = convert(BASIC + ["phone"], ["7", "Firma\x00", "a@b.pl", "b2b", "+48\x00 600"])
    assert record.erp_id == "7"
    assert record.problems == ("name: contains a NUL character (\\x00)", "phone: contains a NUL character (\\x00)")
    keyless = convert(BASIC, ["7\x00", "Firma", "a@b.pl", "b2b"])
    assert (keyless.erp_id, keyless.problems) == ("", ("erp_id: contains a NUL character (\\x00)",))
    assert convert(BASIC, ["7", "Firma", "a@b.pl", "b2b"]).problems == ()


def test_locale_lowercased_and_price_level_text() -> None:
    """Locale is lower-cased; a numeric price level (Subiekt's kh_Cena) becomes text."""
    record = convert(
        BASIC + ["locale", "price_level"],
        ["1", "n", "e", "b2b", " PL ", 3],
        column_types=[str, str, str, str, str, int],
    )
    assert (record.locale, record.price_level) == ("pl", "3")


def test_numbers_in_text_columns_become_text_without_column_types() -> None:
    """Without column types (unknown driver typing) numbers in text columns are still converted to text."""
    record = convert(BASIC + ["phone", "tax_id"], [1, "n", "e", "b2b", 48221234567, Decimal("5250001009")])
    assert (record.phone, record.tax_id) == ("48221234567", "5250001009")


def test_all_record_columns_in_any_order_with_extras_ignored() -> None:
    """Columns are found by name in any order and case; columns the record does not know are ignored."""
    columns = ["Extra", *reversed([c.upper() for c in RECORD_COLUMNS]), "another"]
    values = {
        "erp_id": "9",
        "name": "N",
        "email": "a@b.pl",
        "tags": "b2b",
        "symbol": "S",
        "tax_id": "T",
        "phone": "P",
        "price_level": "detal",
        "discount": "1",
        "sales_rep": "Rep",
        "sales_rep_email": "rep@b.pl",
        "active": "0",
        "locale": "EN",
        "username": " U-9 ",
    }
    row = ["junk", *[values[c] for c in reversed(RECORD_COLUMNS)], "junk"]
    record = convert(columns, row)
    assert record == Record(
        erp_id="9",
        name="N",
        email="a@b.pl",
        tags=frozenset({"b2b"}),
        symbol="S",
        tax_id="T",
        phone="P",
        price_level="detal",
        discount=Decimal("1"),
        sales_rep="Rep",
        sales_rep_email="rep@b.pl",
        active=False,
        locale="en",
        origin="row 1",
        username="U-9",
    )


def test_mapping_renames_source_columns() -> None:
    """`columns` maps record columns to the source's own names, matched case-insensitively and past a BOM."""
    record = convert(
        ["\ufeffKod", "Nazwa", "E-mail", "Cechy"],
        ["K1", "Hurtownia", "h@x.pl", "b2b"],
        mapping={"erp_id": "kod", "name": "Nazwa", "email": "E-mail", "tags": "cechy"},
    )
    assert (record.erp_id, record.name, record.email, record.tags) == ("K1", "Hurtownia", "h@x.pl", {"b2b"})


def test_missing_required_columns_name_them_and_list_the_returned_ones() -> None:
    """A source without a required column fails with the missing names and what it did return."""
    with pytest.raises(SourceError) as caught:
        make_row_reader(
            ["erp_id", "Nazwa", "x"], mapping={"name": "Nazwa", "email": "Mail"}, tag_separator=",", where="q"
        )
    message = str(caught.value)
    assert "email (mapped to 'Mail')" in message
    assert "tags" in message
    assert "it returns: erp_id, Nazwa, x" in message


def test_mapping_with_unknown_record_column_is_a_config_error() -> None:
    """A mapping key that is not a record column (a typo) is refused, listing the valid columns."""
    with pytest.raises(ConfigError) as caught:
        check_column_mapping({"emial": "E-mail"})
    assert "'emial' is not a record column" in str(caught.value)
    assert "sales_rep_email" in str(caught.value)


def grouped(rows: list[list[Any]], columns: Sequence[str] = BASIC) -> list[Record]:
    reader = make_row_reader(columns, mapping={}, tag_separator=None, where="q")
    return list(reader.grouped(rows, "row {}".format, "add ORDER BY erp_id"))


def test_rows_layout_groups_consecutive_rows_of_one_customer() -> None:
    """One row per (customer, tag) becomes one record per customer with all tags; a NULL tag adds none."""
    records = grouped(
        [
            [1, "A", "a@x.pl", "B2B"],
            [1, "A", "a@x.pl", " vip "],
            [2, "B", "b@x.pl", None],
            [3, "C", "c@x.pl", "b2b"],
            ["3", "C", "c@x.pl", "Hurt"],
        ]
    )
    assert [(r.erp_id, r.tags, r.origin) for r in records] == [
        ("1", {"b2b", "vip"}, "row 1"),
        ("2", frozenset(), "row 3"),
        ("3", {"b2b", "hurt"}, "row 4"),
    ]


def test_rows_layout_refuses_unordered_rows() -> None:
    """An erp_id that reappears after another customer's rows raises SourceError asking for ORDER BY erp_id."""
    with pytest.raises(SourceError) as caught:
        grouped([[1, "A", "a", "b2b"], [2, "B", "b", "b2b"], [1, "A", "a", "vip"]])
    assert "'1' appears again at row 3" in str(caught.value)
    assert "ORDER BY erp_id" in str(caught.value)


def test_rows_layout_keeps_blank_ids_apart_and_carries_problems() -> None:
    """Rows with no erp_id are not merged into each other, and problems survive the grouping."""
    records = grouped(
        [[None, "A", "a", "b2b", None], [None, "B", "b", "b2b", 1], [5, "C", "c", "b2b", "maybe"]],
        columns=[*BASIC, "active"],
    )
    assert [r.erp_id for r in records] == ["", "", "5"]
    assert records[2].problems == ("active: cannot read 'maybe' as yes/no",)


def test_row_digest_depends_on_values_only() -> None:
    """The same values give the same digest however often they are referenced; other values or keys do not."""
    from integrator.connectors.values import RowDigester

    digester = RowDigester(0, b"key", [int, str, str, float])
    name = "".join(["Zakład ", "Łódź"])  # built at run time: not an interned constant
    row = (7, name, "pl", 2.5)
    first = digester.digest(row)
    held = [row, row, name, name]  # extra references must not change the serialised bytes
    assert digester.digest(row) == first == digester.digest(list(row))
    assert held and digester.digest((7, name, "en", 2.5)) != first
    assert RowDigester(0, b"other key", [int, str, str, float]).digest(row) != first


def test_row_digest_is_the_crc32_then_adler32_of_the_serialised_row() -> None:
    """The stored fingerprints are these 16 hex digits: a faster way of writing them must not change one."""
    key = b"reading key"
    row = (7, "Zakład Łódź", None, 2.5)
    data = marshal.dumps(row, 2)
    expected = f"{zlib.crc32(data, zlib.crc32(key)):08x}{zlib.adler32(data, zlib.adler32(key)):08x}"
    assert RowDigester(0, key, [int, str, str, float]).digest(row) == expected
    pickled = pickle.dumps((Decimal("1.50"), "x"), protocol=5)
    expected = f"{zlib.crc32(pickled, zlib.crc32(key)):08x}{zlib.adler32(pickled, zlib.adler32(key)):08x}"
    assert RowDigester(0, key, [Decimal, str]).digest((Decimal("1.50"), "x")) == expected
