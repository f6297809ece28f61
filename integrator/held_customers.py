"""The customers a contacts sync holds while their contacts stream by, a few hundred bytes each.

A contacts sync keeps every tagged customer's record until the last contact is read: two thirds of a million
for a million-customer ERP. As `Record` tuples with their own strings that took about 940 bytes a customer.
Here a customer is one `bytes` object instead: the values that many customers repeat (tags, price level, discount,
sales rep and their e-mail, active, locale, problems) are held once, as a numbered combination, and the rest of
the record (name, e-mail, symbol, tax id, phone, origin, digest, …) is marshalled after that number. A record
is rebuilt on each look-up and equals the one held, field for field and type for type, so `report` and `explain`
judge what the sync judged. A record marshal cannot carry (an attribute holding a decimal or a date) is held as
it is.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterator, Mapping
from operator import itemgetter

from integrator.records import Record

__all__ = ["HeldCustomers"]

_TEXT_SHARED = tuple(Record._fields.index(name) for name in ("price_level", "sales_rep", "sales_rep_email", "locale"))
"""Text a handful of values repeat across customers: each distinct value is held once (equal text, one object)."""
_COMBINED = ("tags", "price_level", "discount", "sales_rep", "sales_rep_email", "active", "locale", "problems")
_COMBINED_AT = tuple(Record._fields.index(name) for name in _COMBINED)
_OWN_AT = tuple(at for at in range(1, len(Record._fields)) if at not in _COMBINED_AT)
"""Every field but the erp_id (the key) and the combined ones: what is marshalled per customer."""
_combined_of = itemgetter(*_COMBINED_AT)
_own_of = itemgetter(*_OWN_AT)
_SHARED_LIMIT = 10_000
"""Distinct texts, and distinct combinations, held for sharing at most: an ERP whose sales reps (say) are unique
per customer stops adding entries there, and its customers beyond the limit are held as records."""


def _rebuilder() -> tuple[int, ...]:
    """For each field of `Record` after the erp_id, where its value is in `(*combined, *own)`."""
    place = {at: n for n, at in enumerate(_COMBINED_AT)}
    place.update({at: len(_COMBINED_AT) + n for n, at in enumerate(_OWN_AT)})
    return tuple(place[at] for at in range(1, len(Record._fields)))


_ORDER = _rebuilder()


class HeldCustomers(Mapping[str, Record]):
    """erp_id -> the customer's record, held compactly (see the module)."""

    def __init__(self) -> None:
        self._held: dict[str, bytes | Record] = {}
        self._texts: dict[str | None, str | None] = {}
        self._combination_number: dict[tuple[int, ...], int] = {}
        """The identities of a combination's values -> its number; `_combinations` keeps the values alive, so an
        identity never stands for another object. Identity, not equality: Decimal("5") equals Decimal("5.00"), and
        a record must come back as it was read."""
        self._combinations: list[tuple[object, ...]] = []
        self._last: tuple[str, Record] | None = None
        """The last record rebuilt: a customer's contacts usually come one after the other."""

    def hold(self, erp_id: str, record: Record) -> None:
        """Hold `record` (whose erp_id is `erp_id`) compactly."""
        values = list(record)
        texts = self._texts
        for at in _TEXT_SHARED:
            value = values[at]
            held = texts.get(value)
            if held is not None:
                values[at] = held
            elif len(texts) < _SHARED_LIMIT:
                texts[value] = value
        combined = _combined_of(values)
        identities = tuple(map(id, combined))
        number = self._combination_number.get(identities)
        if number is None and len(self._combinations) < _SHARED_LIMIT:
            number = self._combination_number[identities] = len(self._combinations)
            self._combinations.append(combined)
        compact: bytes | Record
        try:
            compact = marshal.dumps((number, *_own_of(values)), 2) if number is not None else Record._make(values)
        except ValueError:  # an attribute value marshal cannot carry (a decimal, a date)
            compact = Record._make(values)
        self._held[erp_id] = compact
        if self._last is not None and self._last[0] == erp_id:
            self._last = None

    def place(self, erp_id: str, record: Record) -> None:
        """Hold `record` as it is (a placeholder many customers share)."""
        self._held[erp_id] = record
        if self._last is not None and self._last[0] == erp_id:
            self._last = None

    def __getitem__(self, erp_id: str) -> Record:
        last = self._last
        if last is not None and last[0] == erp_id:
            return last[1]
        held = self._held[erp_id]
        if held.__class__ is not bytes:
            return held  # type: ignore[return-value]
        number, *own = marshal.loads(held)  # type: ignore[arg-type]
        parts = (*self._combinations[number], *own)
        record = Record(erp_id, *[parts[at] for at in _ORDER])
        self._last = (erp_id, record)
        return record

    def __contains__(self, erp_id: object) -> bool:
        return erp_id in self._held

    def __iter__(self) -> Iterator[str]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)
