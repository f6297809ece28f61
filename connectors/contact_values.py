"""Raw contacts rows to `Contact`s: what `values` is for customers, for the contacts query or export.

One row per contact person: `erp_id` (its customer), `contact_id`, `email`, and optionally `name`, `phone`,
`active`, `access` (the contact's own website access), `locale`, `username`; plus the `[source] attributes`
the contacts source has (those it lacks are simply not read there). Values are cleaned as a customer's are, and
a value that cannot be interpreted never raises: the contact says why in `problems` and is quarantined, never
judged. A sync may read one and a half times as many contacts as customers, so the per-row closure follows the
customer converter's pattern (one `itemgetter`, inline cleaning, helpers only for the uncommon cases).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from integrator.connectors.values import (
    _FLAGS,
    AttributeReader,
    _text_of,
    attribute_positions,
    attribute_reader,
    read_flag,
    resolve_columns,
)
from integrator.records import CONTACT_OPTIONAL, CONTACT_REQUIRED, Contact

__all__ = ["CONTACT_COLUMNS", "ContactConverter", "ContactReader", "make_contact_reader"]

CONTACT_COLUMNS: tuple[str, ...] = CONTACT_REQUIRED + CONTACT_OPTIONAL
"""The contact columns, in the order the converter reads them (and `Contact` holds them)."""

ContactConverter = Callable[..., Contact]
"""`convert(row, origin, digest="")`: one raw contacts row (values in the source's column order) to a `Contact`."""

if Contact._fields != (*CONTACT_COLUMNS, "attributes", "problems", "origin", "digest"):
    # Built positionally (tuple.__new__, for speed): fail loudly at import rather than shift values.
    raise RuntimeError(f"Contact fields changed to {Contact._fields}; update connectors/contact_values.py")

_TEXT_COLUMNS = frozenset(CONTACT_COLUMNS) - {"erp_id", "contact_id", "active", "access"}
_new_contact = tuple.__new__


def make_contact_reader(
    source_columns: Sequence[str],
    *,
    mapping: dict[str, str],
    where: str,
    column_types: Sequence[Any] | None = None,
    attributes: Sequence[str] = (),
) -> ContactReader:
    """Build the converter for one contacts source from its column names (and, for ODBC, the column types).

    A missing required column (erp_id, contact_id, email) is a `SourceError` naming it and listing what the
    source returns. Of `attributes`, those the source returns are read.
    """
    positions = resolve_columns(source_columns, mapping, where, CONTACT_COLUMNS, CONTACT_REQUIRED)
    extra = attribute_positions(source_columns, attributes, where, required=False)
    types = list(column_types) if column_types is not None else [None] * len(source_columns)
    text_may_be_other = any(
        types[position] is not str
        for column, position in zip(CONTACT_COLUMNS, positions, strict=True)
        if column in _TEXT_COLUMNS and position is not None
    )
    return ContactReader(positions, len(source_columns), text_may_be_other, extra)


class ContactReader:
    """Turns the raw rows of one contacts source into `Contact`s; `convert` is the per-row closure."""

    __slots__ = ("convert", "erp_id_position")

    def __init__(
        self,
        positions: tuple[int | None, ...],
        width: int,
        text_may_be_other: bool,
        attributes: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.erp_id_position: int = positions[0]  # type: ignore[assignment]  # required, so never None
        read = attribute_reader(attributes) if attributes else None
        self.convert: ContactConverter = _contact_converter(positions, width, text_may_be_other, read)


def _contact_converter(
    positions: tuple[int | None, ...],
    width: int,
    text_may_be_other: bool,
    read_attributes: AttributeReader | None,
) -> ContactConverter:
    complete = None not in positions
    # An absent optional column reads position `width`: the None appended to the row.
    pick = itemgetter(*(width if position is None else position for position in positions))
    flags, new, contact_class = _FLAGS, _new_contact, Contact

    def convert(row: Sequence[Any], origin: str, digest: str = "") -> Contact:
        (erp_id, contact_id, email, name, phone, active, access, locale, username) = pick(
            row if complete else (*row, None)
        )
        problems: tuple[str, ...] = ()
        attributes: Any = ()
        if read_attributes is not None:
            attributes, problems = read_attributes(row)
        if erp_id.__class__ is str:
            erp_id = erp_id.strip() or None
        elif erp_id.__class__ is int:
            erp_id = str(erp_id)
        else:
            erp_id = _text_of(erp_id)
        if contact_id.__class__ is str:
            contact_id = contact_id.strip() or None
        elif contact_id.__class__ is int:
            contact_id = str(contact_id)
        else:
            contact_id = _text_of(contact_id)
        if erp_id is None:
            erp_id, problems = "", ("erp_id: missing (NULL or blank)", *problems)
        if contact_id is None:
            contact_id, problems = "", (*problems, "contact_id: missing (NULL or blank)")
        email = (email.strip() or None) if email.__class__ is str else email
        name = (name.strip() or None) if name.__class__ is str else name
        phone = (phone.strip() or None) if phone.__class__ is str else phone
        locale = (locale.strip().lower() or None) if locale.__class__ is str else locale
        username = (username.strip() or None) if username.__class__ is str else username
        if text_may_be_other:
            email, name, phone, username = map(_text_of, (email, name, phone, username))
            if locale is not None and locale.__class__ is not str:
                locale = (_text_of(locale) or "").lower() or None
        if "\0" in f"{erp_id}{contact_id}{email}{name}{phone}{locale}{username}":
            erp_id, contact_id, problems = _without_nul(
                erp_id, contact_id, problems, email=email, name=name, phone=phone, locale=locale, username=username
            )
        if active is None:
            active = True
        elif active.__class__ is not bool:
            flag = flags.get(active)
            active, problems = (flag, problems) if flag is not None else read_flag("active", active, problems)
        if access is None:
            access = True
        elif access.__class__ is not bool:
            flag = flags.get(access)
            access, problems = (flag, problems) if flag is not None else read_flag("access", access, problems)
        return new(
            contact_class,
            (erp_id, contact_id, email, name, phone, active, access, locale, username, attributes, problems, origin,
             digest),
        )  # fmt: skip

    return convert


def _without_nul(
    erp_id: str, contact_id: str, problems: tuple[str, ...], **fields: Any
) -> tuple[str, str, tuple[str, ...]]:
    """Name every text value holding a NUL character, so the contact is quarantined (PostgreSQL refuses NUL in
    text; elsewhere it would cut the value short). A key holding one cannot key anything: it is blanked."""
    nul = "\0"
    found = [
        f"{field}: contains a NUL character (\\x00)"
        for field, value in fields.items()
        if isinstance(value, str) and nul in value
    ]
    if nul in erp_id:
        erp_id, found = "", ["erp_id: contains a NUL character (\\x00)", *found]
    if nul in contact_id:
        contact_id, found = "", ["contact_id: contains a NUL character (\\x00)", *found]
    return erp_id, contact_id, (*problems, *found)
