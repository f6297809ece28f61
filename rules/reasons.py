"""Reason codes: why a record was left out, as short stable codes plus a human sentence for reports.

Codes are stored in run history and compared by other tools, so they never change; only the descriptions may.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CONTACT_INACTIVE",
    "DESCRIPTIONS",
    "DUPLICATE_USERNAME",
    "MISSING_USERNAME",
    "NO_ACCESS",
    "NO_ELIGIBLE_CONTACT",
    "UNKNOWN_CUSTOMER",
    "DUPLICATE_EMAIL",
    "DUPLICATE_ERP_ID",
    "INACTIVE",
    "INVALID_EMAIL",
    "MISSING_EMAIL",
    "MISSING_TAG",
    "RULE_PREFIX",
    "describe",
    "rule_code",
]

MISSING_TAG = "missing_tag"
INACTIVE = "inactive"
MISSING_EMAIL = "missing_email"
INVALID_EMAIL = "invalid_email"
DUPLICATE_EMAIL = "duplicate_email"
"""Decided by the sync (two eligible customers share a login), not by a rule; described here for reports."""
DUPLICATE_ERP_ID = "duplicate_erp_id"
"""Decided by the sync (the source returned an erp_id twice)."""
UNKNOWN_CUSTOMER = "unknown_customer"
"""A contact whose customer the customer query did not return."""
CONTACT_INACTIVE = "contact_inactive"
NO_ACCESS = "no_access"
"""The contact's own website-access flag is off."""
MISSING_USERNAME = "missing_username"
DUPLICATE_USERNAME = "duplicate_username"
"""Decided by the sync, like `duplicate_email`, when logins are usernames."""
NO_ELIGIBLE_CONTACT = "no_eligible_contact"
"""Decided by the sync: an eligible customer none of whose contacts gets an account."""
RULE_PREFIX = "rule:"
"""Consultant rules report `rule:<name>`; their description is the rule's stated reason."""

DESCRIPTIONS: dict[str, str] = {
    MISSING_TAG: "does not carry the tag {tag}",
    INACTIVE: "is marked inactive in the ERP",
    MISSING_EMAIL: "has no e-mail address",
    INVALID_EMAIL: "has an e-mail address that is not valid",
    DUPLICATE_EMAIL: "shares its e-mail address with a customer that keeps the login",
    DUPLICATE_ERP_ID: "appears more than once in the source with the same erp_id",
    UNKNOWN_CUSTOMER: "is a contact of a customer the customer query does not return",
    CONTACT_INACTIVE: "is a contact person marked inactive in the ERP",
    NO_ACCESS: "is a contact person whose website access is switched off",
    MISSING_USERNAME: "has no username (logins are usernames)",
    DUPLICATE_USERNAME: "shares its username with a customer or contact that keeps the login",
    NO_ELIGIBLE_CONTACT: "is eligible, but none of its contact persons is",
}
"""One line per built-in reason code; `{tag}` is filled in with the configured tag."""


def rule_code(name: str) -> str:
    """The reason code of the consultant rule called `name`."""
    return RULE_PREFIX + name


def describe(code: str, tag: str = "b2b", stated: Mapping[str, str] | None = None) -> str:
    """A human sentence for a reason code.

    `stated` maps consultant rule names to their stated reasons, e.g.
    `{r.name: r.reason for r in config.exclude}`.
    An unknown code is returned as it is, so a report never fails on a code from a newer version.
    """
    template = DESCRIPTIONS.get(code)
    if template is not None:
        return template.format(tag=tag)
    if code.startswith(RULE_PREFIX):
        name = code[len(RULE_PREFIX) :]
        reason = (stated or {}).get(name, "")
        return reason or f"excluded by the rule {name}"
    return code
