"""How an account is keyed and what its login is: per customer, or per contact person of a customer.

Without a contacts source an account belongs to one ERP customer and its key is the customer's `erp_id`, as it
always was. With one, an account belongs to one contact of a customer, keyed by (`erp_id`, `contact_id`); the sync
carries that pair as one string, the two ids joined by U+001F (the ASCII unit separator, which no ERP id holds:
a record whose id does is quarantined), so the ledger, the reconciler and the store's unique `live_key` handle
both kinds alike. `split_key` gives the pair back for everything a person reads.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

__all__ = [
    "KEY_SEPARATOR",
    "identity_key",
    "ids_of",
    "key_order",
    "login_function",
    "normalize_username",
    "split_key",
]

KEY_SEPARATOR = "\x1f"


def identity_key(erp_id: str, contact_id: str | None) -> str:
    """The key of the account of this customer (contact_id None) or of this contact of it."""
    return erp_id if contact_id is None else f"{erp_id}{KEY_SEPARATOR}{contact_id}"


def split_key(key: str) -> tuple[str, str | None]:
    """(erp_id, contact_id) of a key; contact_id is None for a per-customer key."""
    erp_id, separator, contact_id = key.partition(KEY_SEPARATOR)
    return (erp_id, contact_id) if separator else (erp_id, None)


def ids_of(key: str) -> dict[str, str | None]:
    """`{"erp_id": …, "contact_id": …}` of a key, for machine output and history rows."""
    erp_id, contact_id = split_key(key)
    return {"erp_id": erp_id, "contact_id": contact_id}


def key_order(key: str, id_order: Callable[[str], Any]) -> tuple[Any, ...]:
    """Sort key of an identity key for "the smallest wins": the customer's id first, then the contact's, each
    ordered by `id_order` (the reconciler's order of ERP ids)."""
    erp_id, contact_id = split_key(key)
    return (id_order(erp_id),) if contact_id is None else (id_order(erp_id), id_order(contact_id))


def normalize_username(username: str | None) -> str:
    """The login a username gives (`[accounts] login = "username"`): trimmed, Unicode NFC, lower-cased, so
    `K/0012` and ` k/0012 ` are one login, like e-mails are."""
    return unicodedata.normalize("NFC", (username or "").strip().lower())


def login_function(mode: str) -> Callable[[Any], str]:
    """`login(record)` for `[accounts] login`: the normalised e-mail (default) or the normalised username."""
    if mode == "username":
        return lambda record: normalize_username(record.username)
    from integrator.records import normalize_login

    return lambda record: normalize_login(record.email)
