"""The customer (and contact) records every connector produces and every rule reads.

A `NamedTuple` rather than a dataclass: a sync builds one per ERP row (a million of them), and a tuple is
immutable, typed and several times cheaper to create.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

__all__ = [
    "CONTACT_OPTIONAL",
    "CONTACT_REQUIRED",
    "EMAIL_VALIDATOR_OPTIONS",
    "OPTIONAL_COLUMNS",
    "RECORD_COLUMNS",
    "REQUIRED_COLUMNS",
    "SYNCED_FIELDS",
    "Contact",
    "Record",
    "attributes_json",
    "canonical_login",
    "fingerprint",
    "normalize_login",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("erp_id", "name", "email", "tags")
"""Columns a query, preset or CSV mapping must return (SPEC "Pinned contract")."""

OPTIONAL_COLUMNS: tuple[str, ...] = (
    "symbol",
    "tax_id",
    "phone",
    "price_level",
    "discount",
    "sales_rep",
    "sales_rep_email",
    "active",
    "locale",
    "username",
)
RECORD_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

SYNCED_FIELDS: tuple[str, ...] = (
    "login",
    "name",
    "symbol",
    "tax_id",
    "phone",
    "price_level",
    "discount",
    "sales_rep",
    "sales_rep_email",
    "locale",
)
"""Account columns copied from the ERP; a change in any of them is an update."""


class Record(NamedTuple):
    """One ERP customer as the connector read it, values already cleaned of surrounding whitespace.

    `tags` are normalised by the connector: case-folded with all whitespace removed (" B2B " -> "b2b"), so
    rules compare them with a set lookup.

    `problems` lists values the connector could not interpret (e.g. `active = "maybe"`). Such a record is
    quarantined, never judged: a garbled row must not remove the customer's account. `origin` says where the
    record came from (a CSV line, a row number) so errors can point at it.

    The fields after `digest` were added with contacts (SPEC "Contacts, usernames and attributes"); they come
    last because connectors build records positionally. A record read from the customer query leaves the four
    contact fields at their defaults.
    """

    erp_id: str
    name: str | None
    email: str | None
    tags: frozenset[str]
    symbol: str | None = None
    tax_id: str | None = None
    phone: str | None = None
    price_level: str | None = None
    discount: Decimal | None = None
    sales_rep: str | None = None
    sales_rep_email: str | None = None
    active: bool = True
    locale: str | None = None
    problems: tuple[str, ...] = ()
    origin: str = ""
    digest: str = ""
    """A digest of the raw source row (and of the config that reads it), when the connector computes one: a
    later sync skips an unchanged row without converting or judging it again."""
    username: str | None = None
    """The login with `[accounts] login = "username"` (the contact's, else this one); unused otherwise."""
    attributes: tuple[tuple[str, Any], ...] = ()
    """The `[source] attributes` columns as (name, value) pairs in config order, values cleaned (text stripped,
    blank text None; numbers, decimals, flags and dates as the driver typed them). `attributes_json` gives the
    stored form."""
    contact_id: str | None = None
    """With a contacts source: the contact this record stands for (the customer's fields, the contact's own)."""
    contact_name: str | None = None
    """The contact person's name."""
    contact_active: bool = True
    """The contact's own active flag."""
    access: bool = True
    """The contact's website-access flag (Inzant's "has website access"); missing means allowed."""


CONTACT_REQUIRED: tuple[str, ...] = ("erp_id", "contact_id", "email")
"""Columns a contacts query or export must return (SPEC "Pinned contract")."""

CONTACT_OPTIONAL: tuple[str, ...] = ("name", "phone", "active", "access", "locale", "username")


class Contact(NamedTuple):
    """One contact person of an ERP customer (one row of `[source] contacts_query` / `contacts_path`).

    Cleaned like `Record`: text stripped (blank is None), `erp_id` and `contact_id` as text, `locale`
    lower-cased, the flags read from the same yes/no spellings as a customer's `active`. A missing `access`
    column means access is allowed. `problems` lists what could not be read (no erp_id or contact_id, an
    unreadable flag, a NUL character): such a contact is quarantined, never judged.
    """

    erp_id: str
    """The customer this contact belongs to."""
    contact_id: str
    """The contact's own id, unique within its customer."""
    email: str | None
    name: str | None = None
    phone: str | None = None
    active: bool = True
    access: bool = True
    locale: str | None = None
    username: str | None = None
    attributes: tuple[tuple[str, Any], ...] = ()
    """The configured attributes the contacts source has, as for `Record.attributes`."""
    problems: tuple[str, ...] = ()
    origin: str = ""
    digest: str = ""
    """A keyed digest of the raw row, when the connector was given a key."""


def _json_value(value: Any) -> str:
    """An attribute value JSON has no type for: a decimal as its exact digits, a date or time in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return str(value)


def attributes_json(pairs: tuple[tuple[str, Any], ...]) -> str | None:
    """The attributes as the canonical JSON object the store keeps (None for none), so equal values give equal text.

    Keys sorted, no spaces, non-ASCII kept as is. Decimals are written as exact strings (`"12.50"`), not
    numbers, so no value changes by a float round trip in a reader of the JSON; dates and datetimes as ISO 8601
    strings; any other value JSON cannot hold as its `str()`, a float that is not finite too (`"NaN"`, `"inf"`:
    bare NaN is not JSON, and a portal's parser would refuse the whole object).
    """
    if not pairs:
        return None
    values = {name: str(v) if v.__class__ is float and not math.isfinite(v) else v for name, v in pairs}
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_json_value)


EMAIL_VALIDATOR_OPTIONS: dict[str, Any] = {
    "check_deliverability": False,  # no DNS, ever
    # Pinned so a change of the library's module-level defaults cannot change a login or a verdict.
    "allow_smtputf8": True,
    "allow_quoted_local": False,
    "allow_domain_literal": False,
    "allow_display_name": False,
    "allow_empty_local": False,
    "globally_deliverable": True,
    "test_environment": False,
    "strict": False,
}
"""How email-validator is called, for the login (here) and for the e-mail rule's verdict alike."""


def normalize_login(email: str | None) -> str:
    """The login an e-mail gives (SPEC "Identity semantics"): the one spelling of an address that every lookup uses.

    email-validator's normalised address (local part in Unicode NFC, domain through UTS-46/IDNA to its canonical
    Unicode form, so `café.pl`, `CAFÉ.PL`, `xn--caf-dma.pl` and an NFD `café.pl` are one domain), then lower-cased
    as a whole with `str.lower` and put back into NFC. `str.lower` is Unicode's default, locale-free mapping:
    `İ` (U+0130) becomes `i` + U+0307 (combining dot above), so `İNFO@x.pl` is not the login `info@x.pl`
    (reading İ as the Turkish capital of `i` needs a locale the ERP does not give). It is not `str.casefold`,
    which would turn `ß` into `ss` and so send the customer's mail to another mailbox: the login is where the
    mail goes. An address the validator rejects is only trimmed and lower-cased: a deterministic string for a
    record the e-mail rule rejects anyway.

    Called for every ERP row, so plain ASCII without a Punycode label, where all of that comes down to trimming
    and lower-casing, never reaches the validator (tests/test_login_normalisation.py proves both paths agree).
    """
    text = (email or "").strip()
    lowered = text.lower()
    if text.isascii() and "xn--" not in lowered:
        return lowered
    return canonical_login(text)[0]


@functools.lru_cache(maxsize=4096)
def canonical_login(text: str) -> tuple[str, bool]:
    """(login, valid) of a trimmed e-mail by email-validator, the slow path of `normalize_login`.

    A login is valid when the validator accepts it and gives it back unchanged once lower-cased, so
    normalising a login again never changes it. Cached: the e-mail rule and the reconciler ask about the
    same record one after the other, and this costs ~20 µs a call.
    """
    from email_validator import EmailNotValidError, validate_email  # ~40 ms to import: not for every process

    lowered = text.lower()
    login = lowered
    for _ in range(3):  # lower-casing after the validator's normalisation converges at once in practice
        try:
            normalized = validate_email(login, **EMAIL_VALIDATOR_OPTIONS).normalized
        except EmailNotValidError:
            return lowered, False
        settled = unicodedata.normalize("NFC", normalized.lower())
        if settled == login:
            return login, True
        login = settled
    return lowered, False


def fingerprint(record: Record, login: str) -> str:
    """A stable digest of the synced fields, so an unchanged customer costs one string comparison."""
    parts = (
        login,
        record.name or "",
        record.symbol or "",
        record.tax_id or "",
        record.phone or "",
        record.price_level or "",
        "" if record.discount is None else str(record.discount),
        record.sales_rep or "",
        record.sales_rep_email or "",
        record.locale or "",
    )
    if record.contact_id is not None or record.attributes or record.username is not None:
        # Contacts, usernames, attributes: their fields count too. A plain customer's digest stays what it was,
        # so the accounts of stores made before these existed are not all rewritten by the next sync.
        parts = (*parts, record.contact_name or "", record.email or "", attributes_json(record.attributes) or "")
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()
