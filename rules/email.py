"""The e-mail rule: a customer needs a valid address, because it becomes the login.

email-validator is the authority (no DNS, ever), but it costs ~20 µs a call: too slow for a million rows. The
login (`records.normalize_login`, the one normalisation every lookup uses) already skips the validator for plain
ASCII; here a precompiled regex accepts the plain lower-case ASCII shape almost every ERP address has, a subset
email-validator certainly accepts; everything else (Unicode, Punycode, quoted local parts, odd shapes, long parts)
goes to the validator through `records.canonical_login`, so the verdict and the login come from one call. The
fast path only ever *accepts*, never rejects on its own, so it cannot change a verdict
(tests/test_rules_email.py proves the subset claim).
"""

from __future__ import annotations

import re

import email_validator
from email_validator import EmailNotValidError, validate_email

from integrator.records import EMAIL_VALIDATOR_OPTIONS, Record, canonical_login, normalize_login
from integrator.rules.reasons import DESCRIPTIONS, INVALID_EMAIL, MISSING_EMAIL

__all__ = ["EmailRule", "fast_accepts", "is_valid_email"]

_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_FAST = re.compile(
    r"(?=[^@]{1,64}@)"  # local part at most 64 characters (RFC 5321 4.5.3.1.1)
    rf"{_ATEXT}+(?:\.{_ATEXT}+)*"  # dot-atom: no leading, trailing or double dot
    r"@"
    r"(?![^@]*--)"  # no "--" anywhere in the domain: R-LDH and Punycode (xn--) labels go to the validator
    r"(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+"  # LDH labels of 1-63, not starting or ending with a hyphen
    r"[a-z]{2,63}"  # an alphabetic top-level domain, so never numeric
)
"""Lower-case only: the rule checks normalised logins, and anything else simply takes the slow path."""

_MAX_LENGTH = 254  # the whole address (RFC 3696 errata 1690), which email-validator always checks
_SPECIAL_SUFFIXES = tuple(f"{sep}{name}" for name in email_validator.SPECIAL_USE_DOMAIN_NAMES for sep in ("@", "."))
"""Domains email-validator refuses (`localhost`, `.test`, `.onion` ...), read from the library itself."""


def fast_accepts(address: str) -> bool:
    """True when `address` is in the plain ASCII subset that email-validator certainly accepts."""
    return (
        len(address) <= _MAX_LENGTH and _FAST.fullmatch(address) is not None and not address.endswith(_SPECIAL_SUFFIXES)
    )


def is_valid_email(address: str) -> bool:
    """email-validator's syntax verdict on exactly `address`, without any DNS lookup, with the options pinned."""
    try:
        validate_email(address, **EMAIL_VALIDATOR_OPTIONS)
    except EmailNotValidError:
        return False
    return True


class EmailRule:
    """Excludes a customer without an e-mail (`missing_email`) or with an invalid one (`invalid_email`)."""

    name = "email"

    def __init__(self, fast_path: bool = True) -> None:
        # `fast_path=False` exists for the benchmark and the agreement tests, not for configuration.
        self.fast_path = fast_path

    def __call__(self, record: Record) -> str | None:
        login = normalize_login(record.email)
        if not login:
            return MISSING_EMAIL
        if self.fast_path and fast_accepts(login):
            return None
        # Valid when the login is an address the validator accepts as it is (cached: the reconciler asks next).
        return None if canonical_login((record.email or "").strip())[1] else INVALID_EMAIL

    def describe(self, code: str) -> str:
        """The human sentence for a reason this rule returns."""
        return DESCRIPTIONS[code]
