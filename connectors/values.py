"""Raw source rows to `Record`s: the one per-row path every connector shares.

A sync reads up to a million rows, so this path must cost little next to the driver's own fetch. Everything
that can be decided once per source (where each column is, whether text columns can hold numbers) is decided
when the reader is built; the per-row closure picks all values with one `itemgetter` call, cleans strings
inline, memoises the few distinct tag and discount strings, and branches off to small helpers only for the
uncommon cases (numbers where text was expected, unreadable values).

A value that cannot be interpreted never raises: the record keeps that field's default and says why in
`problems`, so the sync quarantines the customer instead of acting on a guess.

`[source] attributes` (extra columns passed through) are read by a second small function that runs before the
converter and hands it the cleaned pairs; a source without attributes never calls it.
"""

from __future__ import annotations

import marshal
import pickle
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any

from integrator.errors import ConfigError, SourceError
from integrator.records import RECORD_COLUMNS, REQUIRED_COLUMNS, Record

__all__ = [
    "AttributeReader",
    "RowDigester",
    "RowConverter",
    "RowReader",
    "attribute_positions",
    "attribute_reader",
    "check_column_mapping",
    "clean_attributes",
    "make_row_reader",
    "normalize_tag",
    "resolve_columns",
]

RowConverter = Callable[..., Record]
"""`convert(row, origin, digest="")`: one raw row (values in the source's column order) to a `Record`."""

Attributes = tuple[tuple[str, Any], ...]
AttributeReader = Callable[[Sequence[Any]], tuple[Attributes, tuple[str, ...]]]
"""`read(row)`: the row's configured attributes as cleaned (name, value) pairs, and the problems found in them."""

_FIELDS = (
    "erp_id", "name", "email", "tags", "symbol", "tax_id", "phone", "price_level", "discount", "sales_rep",
    "sales_rep_email", "active", "locale", "problems", "origin", "digest", "username", "attributes", "contact_id",
    "contact_name", "contact_active", "access",
)  # fmt: skip
if Record._fields != _FIELDS or _FIELDS[:13] + _FIELDS[16:17] != RECORD_COLUMNS:
    # The converter unpacks and builds records positionally (tuple.__new__, for speed): fail loudly at import
    # rather than shift values into the wrong fields if someone reorders `Record`.
    raise RuntimeError(f"Record fields changed to {Record._fields}; update connectors/values.py")

_TEXT_COLUMNS = frozenset(RECORD_COLUMNS) - {"erp_id", "tags", "discount", "active"}
_EMPTY_TAGS: frozenset[str] = frozenset()
_CACHE_LIMIT = 4096
_new_record = tuple.__new__

_YES = ("1", "true", "t", "yes", "y", "tak")
_NO = ("0", "false", "f", "no", "n", "nie")
# Every accepted spelling of yes/no in one dict; the numeric keys also match 0.0, 1.0 and Decimal(1).
_FLAGS: dict[Any, bool] = {
    0: False,
    1: True,
    **{spelling: word in _YES for word in _YES + _NO for spelling in (word, word.upper(), word.capitalize())},
}


def normalize_tag(piece: str) -> str:
    """One tag as rules compare it: all whitespace removed, case-folded (" B2B " -> "b2b")."""
    return "".join(piece.split()).casefold()


def check_column_mapping(
    mapping: Mapping[str, str],
    columns: Sequence[str] = RECORD_COLUMNS,
    key: str = "[source.columns]",
    kind: str = "record",
) -> None:
    """Reject a `[source.columns]` key that is not a record column (a typo would silently map nothing);
    `columns`, `key` and `kind` check another mapping (`[source.contact_columns]`, contact columns) alike."""
    unknown = sorted(name for name in mapping if name not in columns)
    blank = sorted(name for name, value in mapping.items() if not str(value).strip())
    problems = [f"{key} {name!r} is not a {kind} column" for name in unknown]
    problems += [f"{key} {name!r} maps to an empty column name" for name in blank]
    if problems:
        raise ConfigError("invalid column mapping", problems + [f"{kind} columns: {', '.join(columns)}"])


def _column_key(name: str) -> str:
    # Headers come with stray spaces, a UTF-8 BOM or another case than the consultant typed.
    return str(name).strip().lstrip("\ufeff").strip().casefold()


def _positions(source_columns: Sequence[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, name in enumerate(source_columns):
        positions.setdefault(_column_key(name), index)
    return positions


def _missing_columns(source_columns: Sequence[str], missing: Sequence[str], where: str) -> SourceError:
    returned = ", ".join(map(str, source_columns)) or "(no columns)"
    return SourceError(f"{where} does not return the required column(s) {', '.join(missing)}; it returns: {returned}")


def resolve_columns(
    source_columns: Sequence[str],
    mapping: Mapping[str, str],
    where: str,
    columns: Sequence[str] = RECORD_COLUMNS,
    required: Sequence[str] = REQUIRED_COLUMNS,
) -> tuple[int | None, ...]:
    """Where each record column (in `RECORD_COLUMNS` order) sits in the source; None for an absent optional one.
    `columns` and `required` resolve another kind of row (a contact's) alike.

    Raises `SourceError` naming every missing required column and listing what the source did return.
    """
    positions = _positions(source_columns)
    wanted = [mapping.get(column, column) for column in columns]
    found = tuple(positions.get(_column_key(name)) for name in wanted)
    missing = [
        column if name == column else f"{column} (mapped to {name!r})"
        for column, name, position in zip(columns, wanted, found, strict=True)
        if position is None and column in required
    ]
    if missing:
        raise _missing_columns(source_columns, missing, where)
    return found


def attribute_positions(
    source_columns: Sequence[str], attributes: Sequence[str], where: str, *, required: bool = True
) -> tuple[tuple[str, int], ...]:
    """(name, position) of each configured attribute the source returns, in config order.

    `required`: a configured attribute the source lacks is a `SourceError` naming it (the customer query must
    return them all); otherwise it is just not read (a contacts query need return only those it has).
    """
    positions = _positions(source_columns)
    found = tuple((name, positions.get(_column_key(name))) for name in attributes)
    missing = [f"{name} (listed in [source] attributes)" for name, position in found if position is None]
    if missing and required:
        raise _missing_columns(source_columns, missing, where)
    return tuple((name, position) for name, position in found if position is not None)


def make_row_reader(
    source_columns: Sequence[str],
    *,
    mapping: Mapping[str, str],
    tag_separator: str | None,
    where: str,
    column_types: Sequence[Any] | None = None,
    attributes: Sequence[str] = (),
) -> RowReader:
    """Build the converter for one source from its column names (and, for ODBC, the column types).

    `tag_separator=None` means one tag per row (tags_layout "rows"). `column_types` lets the converter skip
    the number-to-text step when every text column is known to be `str` (CSV always is). `attributes`: the
    `[source] attributes` columns, each of which the source must return.
    """
    positions = resolve_columns(source_columns, mapping, where)
    extra = attribute_positions(source_columns, attributes, where)
    types = list(column_types) if column_types is not None else [None] * len(source_columns)
    text_may_be_other = any(
        types[position] is not str
        for column, position in zip(RECORD_COLUMNS, positions, strict=True)
        if column in _TEXT_COLUMNS and position is not None
    )
    return RowReader(positions, len(source_columns), tag_separator, text_may_be_other, extra)


class RowReader:
    """Turns the raw rows of one source into records; `convert` is the hot per-row closure."""

    __slots__ = ("convert", "erp_id_position", "tags_position", "_tags_of", "tags_of")

    def __init__(
        self,
        positions: tuple[int | None, ...],
        width: int,
        tag_separator: str | None,
        text_may_be_other: bool,
        attributes: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.erp_id_position: int = positions[0]  # type: ignore[assignment]  # required, so never None
        self.tags_position: int = positions[3]  # type: ignore[assignment]
        self._tags_of = self.tags_of = _tag_parser(tag_separator)
        convert = _row_converter(positions, width, self._tags_of, text_may_be_other)
        self.convert: RowConverter = convert if not attributes else _with_attributes(convert, attributes)

    def grouped(
        self,
        rows: Iterable[Sequence[Any]],
        origin_of: Callable[[int], str],
        unordered_hint: str,
        problem_of: Callable[[int], str | None] | None = None,
    ) -> Iterator[Record]:
        """Records from one-row-per-(customer, tag) rows: consecutive rows of one erp_id become one record.

        Rows of one customer must be adjacent; an erp_id seen again after another one raises `SourceError`
        (sorting would hold the whole source in memory; guessing would drop tags). Detecting that keeps a set
        of the erp_ids seen, the one thing here that grows with the source. `origin_of(n)` and
        `problem_of(n)` describe the n-th row (1-based) and are asked while that row is the latest one read.
        """
        convert, tags_of = self.convert, self._tags_of
        erp_at, tags_at = self.erp_id_position, self.tags_position
        seen: set[str] = set()
        current: Record | None = None
        current_raw: Any = None
        tags: list[frozenset[str]] = []
        problems: list[str] = []
        for number, row in enumerate(rows, 1):
            flaw = problem_of(number) if problem_of is not None else None
            raw = row[erp_at]
            if flaw is None and current is not None and current.erp_id and raw == current_raw:
                tags.append(tags_of(row[tags_at]))  # the usual case: another tag of the same customer
                continue
            record = convert(row, origin_of(number))
            if flaw is not None:
                record = record._replace(problems=(*record.problems, flaw))
            if current is not None and current.erp_id and record.erp_id == current.erp_id:
                tags.append(record.tags)
                problems.extend(record.problems)
                current_raw = raw
                continue
            if current is not None:
                yield _merged(current, tags, problems)
            if record.erp_id in seen:
                raise SourceError(
                    f"erp_id {record.erp_id!r} appears again at {record.origin}, after rows of other customers: "
                    f'with tags_layout = "rows" each customer\'s rows must be adjacent; {unordered_hint}'
                )
            if record.erp_id:
                seen.add(record.erp_id)
            current, current_raw, tags, problems = record, raw, [], []
        if current is not None:
            yield _merged(current, tags, problems)


class RowDigester:
    """Digests of raw rows, for the sync's unchanged-row fast path (column layout only).

    `key` says how the rows are read (config, code version): a change there changes every digest, so no row
    is skipped on the strength of an old reading. Rows are serialised with `marshal` (C speed, stable for
    str/int/float/bytes/None) when the source's column types allow, else with `pickle` (Decimal, dates); the
    choice depends on the columns only, so a row's digest is the same in every run.
    """

    __slots__ = ("_erp_at", "digest")

    def __init__(self, erp_id_position: int, key: bytes, column_types: Sequence[Any] | None = None) -> None:
        self._erp_at = erp_id_position
        simple = column_types is not None and all(kind in _MARSHALLABLE for kind in column_types)
        self.digest: Callable[[Sequence[Any]], str] = _digest_function(key, simple)
        """`digest(row)`: 16 hex digits identifying the row's values under this reading."""

    def erp_id_of(self, row: Sequence[Any]) -> str:
        """The erp_id exactly as `convert` would give it ("" when missing)."""
        value = row[self._erp_at]
        if value.__class__ is int:
            return str(value)
        if value.__class__ is str:
            return value.strip()
        return _text_of(value) or ""


def _digest_function(key: bytes, marshallable: bool) -> Callable[[Sequence[Any]], str]:
    """CRC-32 and Adler-32 of the serialised row, seeded by the reading key, side by side.

    This detects changed rows (it is no defence against forged ones) at a third of the cost of a cryptographic
    hash; it runs once per row, a million times a sync, hence a closure over locals.
    """
    crc_seed, adler_seed = zlib.crc32(key), zlib.adler32(key)
    crc32, adler32, dumps = zlib.crc32, zlib.adler32, marshal.dumps

    if not marshallable:

        def digest_pickled(row: Sequence[Any]) -> str:
            data = _pickled(tuple(row))
            return (crc32(data, crc_seed) << 32 | adler32(data, adler_seed)).to_bytes(8, "big").hex()

        return digest_pickled

    def digest(row: Sequence[Any]) -> str:
        try:
            # Version 2: later versions mark objects referenced elsewhere (FLAG_REF), so the same values
            # could serialise differently from one call, or one process, to the next.
            data = dumps(tuple(row), 2)
        except ValueError:  # a driver returned a type its column description did not announce
            data = _pickled(tuple(row))
        # The 16 hex digits of CRC-32 then Adler-32, made in one step (a third cheaper than two formats).
        return (crc32(data, crc_seed) << 32 | adler32(data, adler_seed)).to_bytes(8, "big").hex()

    return digest


_MARSHALLABLE = frozenset({str, int, float, bool, bytes, bytearray})


def _pickled(values: Any) -> bytes:
    return pickle.dumps(values, protocol=5)


def _merged(record: Record, tags: list[frozenset[str]], problems: list[str]) -> Record:
    if not tags and not problems:
        return record
    merged_problems = tuple(dict.fromkeys((*record.problems, *problems)))
    return record._replace(tags=record.tags.union(*tags), problems=merged_problems)


def _tag_parser(separator: str | None) -> Callable[[Any], frozenset[str]]:
    """A cached raw-value-to-tags function: a million customers share a handful of distinct tag strings."""
    cache: dict[Any, frozenset[str]] = {}

    def tags_of(value: Any) -> frozenset[str]:
        if value is None:
            return _EMPTY_TAGS
        tags = cache.get(value)
        if tags is None:
            text = value if value.__class__ is str else _text_of(value) or ""
            pieces = text.split(separator) if separator is not None else (text,)
            tags = frozenset(tag for tag in map(normalize_tag, pieces) if tag)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[value] = tags
        return tags

    return tags_of


def _with_attributes(convert: RowConverter, attributes: tuple[tuple[str, int], ...]) -> RowConverter:
    """`convert` for a source with attributes: they are read first and handed to it with their problems."""
    read = attribute_reader(attributes)

    def convert_with_attributes(row: Sequence[Any], origin: str, digest: str = "") -> Record:
        pairs, problems = read(row)
        return convert(row, origin, digest, pairs, problems)

    return convert_with_attributes


def attribute_reader(attributes: tuple[tuple[str, int], ...]) -> AttributeReader:
    """The reader of the attributes at these (name, position)s of a row (values cleaned as `clean_attributes`
    says). Text, decimals, numbers and NULLs take the fast path; anything else goes through `clean_attributes`."""
    names = tuple(name for name, _ in attributes)
    positions = tuple(position for _, position in attributes)
    pick: Callable[[Sequence[Any]], Sequence[Any]] = (
        itemgetter(*positions) if len(positions) > 1 else lambda row, at=positions[0]: (row[at],)  # type: ignore[misc]
    )
    nul = "\0"

    def read(row: Sequence[Any]) -> tuple[Attributes, tuple[str, ...]]:
        pairs = []
        for name, value in zip(names, pick(row)):  # noqa: B905 - as long by construction; strict= costs here
            if value.__class__ is str:
                value = value.strip() or None
                if value is not None and nul in value:
                    return clean_attributes(names, pick(row))
            elif value.__class__ is bytes or value.__class__ is bytearray:
                return clean_attributes(names, pick(row))
            pairs.append((name, value))
        return tuple(pairs), ()

    return read


def clean_attributes(names: Sequence[str], values: Sequence[Any]) -> tuple[Attributes, tuple[str, ...]]:
    """Attribute values as stored: text stripped (blank is None), bytes decoded as UTF-8 text; numbers,
    decimals, flags and dates as the driver gave them (`records.attributes_json` writes those). A NUL character
    in text is a problem, as in any other text column."""
    problems: tuple[str, ...] = ()
    pairs = []
    for name, value in zip(names, values, strict=True):
        kind = value.__class__
        if kind is bytes or kind is bytearray:
            value, kind = bytes(value).decode("utf-8", "replace"), str
        if kind is str:
            value = value.strip() or None
            if value is not None and "\0" in value:
                problems = (*problems, f"attribute {name}: contains a NUL character (\\x00)")
        pairs.append((name, value))
    return tuple(pairs), problems


def _row_converter(
    positions: tuple[int | None, ...],
    width: int,
    tags_of: Callable[[Any], frozenset[str]],
    text_may_be_other: bool,
) -> RowConverter:
    # `username` (the last column) is picked only when the source has it: most sources do not, and padding
    # every row for it would cost more than the rest of an all-columns source's conversion put together.
    with_username = positions[-1] is not None
    if not with_username:
        positions = positions[:-1]
    complete = None not in positions
    # An absent optional column reads position `width`: the None appended to the row.
    pick = itemgetter(*(width if position is None else position for position in positions))
    flags, numbers = _FLAGS, _bounded_cache(_decimal_of)
    new, record_class = _new_record, Record

    # Deliberately unrolled, one line per column: this runs once per ERP row, a million times per sync.
    # `attributes` and their `flaws` come from `_with_attributes`, for a source that has any.
    def convert(row: Sequence[Any], origin: str, digest: str = "", attributes: Any = (), flaws: Any = ()) -> Record:
        if with_username:
            (erp_id, name, email, tags, symbol, tax_id, phone, price_level, discount, sales_rep, sales_rep_email,
             active, locale, username) = pick(row if complete else (*row, None))  # fmt: skip
            username = (username.strip() or None) if username.__class__ is str else username
        else:
            (erp_id, name, email, tags, symbol, tax_id, phone, price_level, discount, sales_rep, sales_rep_email,
             active, locale) = pick(row if complete else (*row, None))  # fmt: skip
            username = None
        problems: tuple[str, ...] = flaws
        if erp_id.__class__ is str:
            erp_id = erp_id.strip() or None
        elif erp_id.__class__ is int:  # the usual SQL key
            erp_id = str(erp_id)
        else:
            erp_id = _text_of(erp_id)
        if erp_id is None:
            erp_id, problems = "", ("erp_id: missing (NULL or blank)", *problems)
        name = (name.strip() or None) if name.__class__ is str else name
        email = (email.strip() or None) if email.__class__ is str else email
        symbol = (symbol.strip() or None) if symbol.__class__ is str else symbol
        tax_id = (tax_id.strip() or None) if tax_id.__class__ is str else tax_id
        phone = (phone.strip() or None) if phone.__class__ is str else phone
        price_level = (price_level.strip() or None) if price_level.__class__ is str else price_level
        sales_rep = (sales_rep.strip() or None) if sales_rep.__class__ is str else sales_rep
        sales_rep_email = (sales_rep_email.strip() or None) if sales_rep_email.__class__ is str else sales_rep_email
        locale = (locale.strip().lower() or None) if locale.__class__ is str else locale
        if text_may_be_other:
            (name, email, symbol, tax_id, phone, price_level, sales_rep, sales_rep_email, username) = map(
                _text_of, (name, email, symbol, tax_id, phone, price_level, sales_rep, sales_rep_email, username)
            )
            if locale is not None and locale.__class__ is not str:
                locale = (_text_of(locale) or "").lower() or None
        # `username` apart: most sources have none, and formatting a None into the text costs ~7 % of a row.
        if "\0" in f"{erp_id}{name}{email}{symbol}{tax_id}{phone}{price_level}{sales_rep}{sales_rep_email}{locale}" or (
            username is not None and "\0" in username
        ):
            erp_id, problems = _without_nul(
                erp_id, problems, name=name, email=email, symbol=symbol, tax_id=tax_id, phone=phone,
                price_level=price_level, sales_rep=sales_rep, sales_rep_email=sales_rep_email, locale=locale,
                username=username,
            )  # fmt: skip
        tags = tags_of(tags)
        if discount is not None and discount.__class__ is not Decimal:
            discount, problem = numbers(discount)
            if problem:
                problems = (*problems, problem)
        if active is None:
            active = True
        elif active.__class__ is not bool:
            flag = flags.get(active)
            active, problems = (flag, problems) if flag is not None else read_flag("active", active, problems)
        return new(
            record_class,
            (erp_id, name, email, tags, symbol, tax_id, phone, price_level, discount, sales_rep,
             sales_rep_email, active, locale, problems, origin, digest, username, attributes, None, None, True,
             True),
        )  # fmt: skip

    return convert


def _without_nul(erp_id: str, problems: tuple[str, ...], **fields: Any) -> tuple[str, tuple[str, ...]]:
    """Name every text field holding a NUL character, so the record is quarantined: PostgreSQL refuses NUL in
    text (one such value would fail the whole run there), and elsewhere it would cut the value short on the
    portal and in mail. An erp_id holding one cannot key anything: the record is treated as keyless."""
    nul = "\0"
    found = [
        f"{field}: contains a NUL character (\\x00)"
        for field, value in fields.items()
        if isinstance(value, str) and nul in value
    ]
    if erp_id and nul in erp_id:
        return "", (*problems, "erp_id: contains a NUL character (\\x00)", *found)
    return erp_id, (*problems, *found)


def _bounded_cache(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Memoise `parse` for text and float inputs: a source repeats a few distinct discounts a million times."""
    cache: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        if value.__class__ is not str and value.__class__ is not float:
            return parse(value)  # never cached: True == 1 would alias
        result = cache.get(value)
        if result is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            result = cache[value] = parse(value)
        return result

    return cached


def _text_of(value: Any) -> str | None:
    """A non-string value as text: 12 and 12.0 read "12" (ids and price levels come as numbers too)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace").strip() or None
    return str(value).strip() or None


def _decimal_of(value: Any) -> tuple[Decimal | None, str | None]:
    """A discount as `Decimal`; "12,5" and "12.5%" read 12.5; anything else is a problem, not a guess."""
    if isinstance(value, bool):
        return None, f"discount: cannot read {value!r} as a number"
    if isinstance(value, int):
        return Decimal(value), None
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not text:
        return None, None
    try:
        number = Decimal(text.removesuffix("%").strip().replace(",", "."))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        return None, f"discount: cannot read {value!r} as a number"
    return number, None


def read_flag(field: str, value: Any, problems: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
    """A yes/no value in a spelling the converters' fast lookup missed: its flag, or True (the default) and a
    problem naming `field` when it is no yes/no at all (the record is then quarantined, never judged)."""
    flag = _flag_of(value)
    if flag is None:
        return True, (*problems, f"{field}: cannot read {value!r} as yes/no")
    return flag, problems


def _flag_of(value: Any) -> bool | None:
    """`active` in a spelling the fast lookup missed ("TaK", " yes"); None when it is not a yes/no."""
    if isinstance(value, str):
        text = value.strip().lower()
        return _FLAGS.get(text) if text else True  # blank is NULL, and NULL means active
    if isinstance(value, bytes | bytearray):
        return _flag_of(bytes(value).decode("utf-8", "replace"))
    try:
        return _FLAGS.get(value)
    except TypeError:
        return None
