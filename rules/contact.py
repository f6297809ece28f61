"""The rules a contact person meets on top of its customer's (contacts sources, `[source] contacts_query`).

A contact is eligible when its customer is known and eligible (tag, active, the consultant's rules), the contact
itself is active, its own access flag (Inzant's "has website access") is on where the source has one, its e-mail
is valid, and, when logins are usernames, it has one (its own, else its customer's).
"""

from __future__ import annotations

from collections.abc import Container

from integrator.identity import split_key
from integrator.records import Record
from integrator.rules.reasons import (
    CONTACT_INACTIVE,
    DESCRIPTIONS,
    MISSING_USERNAME,
    NO_ACCESS,
    UNKNOWN_CUSTOMER,
)

__all__ = ["ContactRule", "KnownCustomerRule", "UsernameRule"]


class KnownCustomerRule:
    """Excludes a contact whose customer the customer query did not return (`unknown_customer`): deleted in the
    ERP, or left out of the query; a live account of it is removed like any other that lost its customer."""

    name = "customer"

    def __init__(self, customers: Container[str]) -> None:
        self._customers = customers

    def __call__(self, record: Record) -> str | None:
        return None if split_key(record.erp_id)[0] in self._customers else UNKNOWN_CUSTOMER

    def describe(self, code: str) -> str:
        """The human sentence for a reason this rule returns."""
        return DESCRIPTIONS[code]


class ContactRule:
    """Excludes a contact marked inactive (`contact_inactive`) or whose website access is off (`no_access`)."""

    name = "contact"

    def __call__(self, record: Record) -> str | None:
        if not record.contact_active:
            return CONTACT_INACTIVE
        return None if record.access else NO_ACCESS

    def describe(self, code: str) -> str:
        """The human sentence for a reason this rule returns."""
        return DESCRIPTIONS[code]


class UsernameRule:
    """`[accounts] login = "username"`: a record without a username has no login (`missing_username`)."""

    name = "username"

    def __call__(self, record: Record) -> str | None:
        return None if record.username and record.username.strip() else MISSING_USERNAME

    def describe(self, code: str) -> str:
        """The human sentence for a reason this rule returns."""
        return DESCRIPTIONS[code]
