"""The CSV connector against real files: encodings, delimiter, mapping, broken lines, streaming."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from integrator.config import SourceConfig
from integrator.connectors import CONNECTORS, CsvConnector, OdbcConnector, make_connector
from integrator.errors import ConfigError, SourceError

SUBIEKT_HEADER = "Kod;Nazwa;E-mail;Cechy;Rabat;Aktywny"
SUBIEKT_MAPPING = {
    "erp_id": "Kod",
    "name": "Nazwa",
    "email": "E-mail",
    "tags": "Cechy",
    "discount": "Rabat",
    "active": "Aktywny",
}


def csv_source(path: Path, **options: Any) -> SourceConfig:
    return SourceConfig(kind="csv", path=path, **options)


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def test_cp1250_export_with_polish_names_delimiter_and_mapping(tmp_path: Path) -> None:
    """A Subiekt-style cp1250, semicolon-separated export with its own headers reads Polish text intact."""
    path = write(
        tmp_path / "kontrahenci.csv",
        [
            SUBIEKT_HEADER,
            "K001;Zakład Łódź Żółć;biuro@lodz.pl;B2B, Hurt;12,5;tak",
            'K002;"Sklep; ""Pod Dębem""";;;;nie',
        ],
        encoding="cp1250",
    )
    source = csv_source(path, encoding="cp1250", columns=SUBIEKT_MAPPING)
    first, second = make_connector(source).records()
    assert (first.erp_id, first.name, first.email) == ("K001", "Zakład Łódź Żółć", "biuro@lodz.pl")
    assert (first.tags, first.discount, first.active) == ({"b2b", "hurt"}, Decimal("12.5"), True)
    assert (second.name, second.email, second.tags, second.active) == ('Sklep; "Pod Dębem"', None, frozenset(), False)
    assert (first.origin, second.origin) == ("kontrahenci.csv:line 2", "kontrahenci.csv:line 3")


def test_utf8_with_bom_and_comma_delimiter(tmp_path: Path) -> None:
    """A UTF-8 file with a byte-order mark and `,` delimiter finds its first column by name."""
    path = write(tmp_path / "c.csv", ["erp_id,name,email,tags", '1,Żaneta,z@x.pl,"b2b,vip"'], encoding="utf-8-sig")
    (record,) = make_connector(csv_source(path, delimiter=",", encoding="utf-8-sig")).records()
    assert (record.erp_id, record.name, record.tags) == ("1", "Żaneta", {"b2b", "vip"})
    (record,) = make_connector(csv_source(path, delimiter=",", encoding="utf-8")).records()
    assert record.erp_id == "1"


def test_decode_error_names_the_line(tmp_path: Path) -> None:
    """A byte the encoding cannot decode fails with SourceError naming the file and the exact line."""
    lines = ["erp_id;name;email;tags"] + [f"{n};Firma {n};f{n}@x.pl;b2b" for n in range(1, 3000)]
    lines[2500] = "2500;Zak\udcb3ad;z@x.pl;b2b"  # a lone cp1250 "ł" byte in a UTF-8 file
    path = tmp_path / "mixed.csv"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
    with pytest.raises(SourceError) as caught:
        list(make_connector(csv_source(path)).records())
    assert f"{path}: line 2501 is not valid utf-8 text" in str(caught.value)


def test_records_stream_before_the_file_is_read_to_its_end(tmp_path: Path) -> None:
    """Records arrive before the reader reaches a broken byte far down the file: the file is streamed."""
    lines = ["erp_id;name;email;tags"] + [f"{n};Firma {n};f{n}@x.pl;b2b" for n in range(1, 50_000)]
    path = tmp_path / "big.csv"
    path.write_bytes("\n".join(lines).encode() + b"\n99999;\xff;x;b2b\n")
    records = make_connector(csv_source(path)).records()
    assert [r.erp_id for r in itertools.islice(records, 3)] == ["1", "2", "3"]
    with pytest.raises(SourceError, match="line 50001"):
        list(records)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    """A missing export is a SourceError that names the path looked at."""
    path = tmp_path / "nowhere" / "export.csv"
    with pytest.raises(SourceError, match=f"the CSV file {path} does not exist"):
        list(make_connector(csv_source(path)).records())


def test_missing_required_column_lists_the_header(tmp_path: Path) -> None:
    """A header without a required column fails naming it and listing the header's columns."""
    path = write(tmp_path / "c.csv", ["Kod;Nazwa;Cechy", "1;A;b2b"])
    with pytest.raises(SourceError) as caught:
        list(make_connector(csv_source(path, columns={"erp_id": "Kod", "name": "Nazwa", "tags": "Cechy"})).records())
    assert "required column(s) email;" in str(caught.value)
    assert "it returns: Kod, Nazwa, Cechy" in str(caught.value)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    """An empty export is a SourceError asking for a header, not an empty customer list."""
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match="is empty; it needs a header row"):
        list(make_connector(csv_source(path)).records())


def test_wrong_field_count_is_a_problem_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    """A line with too few or too many fields is quarantined with a problem; blank and ';;;' lines are skipped."""
    path = write(
        tmp_path / "c.csv",
        ["erp_id;name;email;tags", "1;A;a@x.pl;b2b", "", "2;B", ";;;", "3;C;c@x.pl;b2b;extra", "4;D;d@x.pl;b2b"],
    )
    records = list(make_connector(csv_source(path)).records())
    assert [(r.erp_id, r.problems, r.origin) for r in records] == [
        ("1", (), "c.csv:line 2"),
        ("2", ("line has 2 fields, the header has 4",), "c.csv:line 4"),
        ("3", ("line has 5 fields, the header has 4",), "c.csv:line 6"),
        ("4", (), "c.csv:line 7"),
    ]


def test_garbage_values_become_problems(tmp_path: Path) -> None:
    """Unreadable values and a blank erp_id yield records with problems rather than exceptions."""
    path = write(tmp_path / "c.csv", [SUBIEKT_HEADER, "K1;A;a@x.pl;b2b;abc;maybe", ";B;b@x.pl;b2b;1;1"])
    first, second = make_connector(csv_source(path, columns=SUBIEKT_MAPPING)).records()
    assert first.problems == ("discount: cannot read 'abc' as a number", "active: cannot read 'maybe' as yes/no")
    assert (second.erp_id, second.problems) == ("", ("erp_id: missing (NULL or blank)",))


def test_only_reads_one_customer(tmp_path: Path) -> None:
    """`only` yields just the records of that erp_id."""
    path = write(tmp_path / "c.csv", ["erp_id;name;email;tags", "1;A;a;b2b", " 2 ;B;b;b2b", "3;C;c;b2b"])
    assert [r.name for r in make_connector(csv_source(path)).records(only="2")] == ["B"]
    assert list(make_connector(csv_source(path)).records(only="9")) == []


def test_rows_layout_in_a_file(tmp_path: Path) -> None:
    """A one-row-per-tag export is grouped per customer, and an unsorted one is refused with a hint."""
    path = write(tmp_path / "t.csv", ["erp_id;name;email;tags", "1;A;a;b2b", "1;A;a;vip", "2;B;b;", "1;A;a;x"])
    records = make_connector(csv_source(path, tags_layout="rows")).records()
    assert [(r.erp_id, r.tags, r.origin) for r in itertools.islice(records, 2)] == [
        ("1", {"b2b", "vip"}, "t.csv:line 2"),
        ("2", frozenset(), "t.csv:line 4"),
    ]
    with pytest.raises(SourceError, match="appears again at t.csv:line 5.*sort the file by erp_id"):
        next(records)


def test_describe_and_registry(tmp_path: Path) -> None:
    """`make_connector` picks the class by kind; describe() names the file and how it is read."""
    connector = make_connector(csv_source(tmp_path / "x.csv", encoding="cp1250"))
    assert isinstance(connector, CsvConnector)
    assert connector.describe() == f"csv {tmp_path / 'x.csv'} (delimiter ';', encoding cp1250, tags in one column)"
    assert {"odbc": OdbcConnector, "csv": CsvConnector} == CONNECTORS


def test_unknown_kind_lists_the_valid_ones(tmp_path: Path) -> None:
    """An unknown source kind is a ConfigError that lists the valid kinds."""
    source = SourceConfig.model_construct(kind="ftp", path=tmp_path)
    with pytest.raises(ConfigError, match="'ftp' is not a known connector") as caught:
        make_connector(source)
    assert "valid kinds: odbc, csv" in str(caught.value)


def test_unknown_encoding_and_bad_mapping_are_config_errors(tmp_path: Path) -> None:
    """An encoding Python does not know, or a mapping to a non-record column, fails before any reading."""
    with pytest.raises(ConfigError, match="encoding 'cp-polish'"):
        make_connector(csv_source(tmp_path / "x.csv", encoding="cp-polish"))
    with pytest.raises(ConfigError, match="'nip' is not a record column"):
        make_connector(csv_source(tmp_path / "x.csv", columns={"nip": "NIP"}))
