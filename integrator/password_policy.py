"""The one rule for a password a customer chooses (activation, reset, change, first login after a temporary one).

After NIST SP 800-63B 5.1.1.2 and OWASP ASVS v4 2.1: a length floor and ceiling, a check against a list of common
passwords, no composition rules (no "one digit, one capital"), and never a truncation. Length is counted in
Unicode code points after NFC, so "ó" is one character whether the customer's keyboard sent it composed or as "o"
plus a combining accent. The list is Django's CommonPasswordValidator list (integrator/data/common-passwords.*,
with its source and licence), compared case-insensitively as Django does.

The verdict names the rule (`too_short`, `too_long`, `common`, `same_as_login`, `same_as_old`) and says why in
words without ever repeating the password.
"""

from __future__ import annotations

import gzip
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "PasswordRefused",
    "Rule",
    "check",
    "common_passwords",
    "length",
]

MIN_LENGTH = 8
"""The floor (NIST 800-63B): `[accounts] min_password_length` can raise it, never lower it."""
MAX_LENGTH = 128
"""Longest accepted (NIST asks for at least 64); longer is refused, never cut. Bounds one request's argon2 input."""

_LIST = "common-passwords.txt.gz"


class Rule(StrEnum):
    """Which rule refused a new password (the API's `rule`)."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    COMMON = "common"
    SAME_AS_LOGIN = "same_as_login"
    SAME_AS_OLD = "same_as_old"


@dataclass(frozen=True)
class PasswordRefused:
    """A refused password: the rule, and a sentence for the customer that never contains the password."""

    rule: Rule
    reason: str


def length(password: str) -> int:
    """The password's length as the policy counts it: Unicode code points after NFC."""
    return len(unicodedata.normalize("NFC", password))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lowercased, without the entries shorter than `MIN_LENGTH` (refused as too short anyway)."""
    with resources.files("integrator").joinpath("data", _LIST).open("rb") as raw, gzip.open(raw, "rt") as text:
        return frozenset(line for line in (raw_line.strip() for raw_line in text) if len(line) >= MIN_LENGTH)


def _folded(password: str) -> str:
    return unicodedata.normalize("NFC", password).strip().lower()


def check(password: str, *, login: str, min_length: int = MIN_LENGTH, old: str | None = None) -> PasswordRefused | None:
    """Why `password` may not become the account's password, or None when it may.

    `min_length` is `[accounts] min_password_length` (below `MIN_LENGTH` it is taken as `MIN_LENGTH`); `old` is
    the password being replaced, when the customer typed it."""
    floor = max(min_length, MIN_LENGTH)
    count = length(password)
    if count > MAX_LENGTH:
        return PasswordRefused(Rule.TOO_LONG, f"the password must have at most {MAX_LENGTH} characters; it is not cut")
    if count < floor:
        return PasswordRefused(Rule.TOO_SHORT, f"the password must have at least {floor} characters")
    folded = _folded(password)
    if folded in common_passwords():
        return PasswordRefused(Rule.COMMON, "the password is on a list of common passwords: choose another")
    if folded == _folded(login):
        return PasswordRefused(Rule.SAME_AS_LOGIN, "the password must not be the login")
    if old is not None and password == old:
        return PasswordRefused(Rule.SAME_AS_OLD, "the new password must differ from the old one")
    return None
