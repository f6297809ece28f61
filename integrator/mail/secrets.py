"""Credentials: minting link tokens and temporary passwords, hashing, storing and checking them.

Only hashes are stored. Link tokens carry 256 random bits, so a plain SHA-256 is enough (nothing to
brute-force); temporary and user-chosen passwords use argon2id. A link token reads `<secret id>.<random>`: the
id finds the row by primary key (no index on the hash needed), the random part is what is hashed and compared.

The newest secret is the valid one: once a mail carrying a new secret is accepted by the server, every older
unused secret of that account is revoked (`revoke_others`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import argon2
import sqlalchemy as sa

from integrator.store.schema import account_secrets

__all__ = [
    "ACTIVATION_LINK",
    "LINK_KINDS",
    "RESET_LINK",
    "TEMPORARY_PASSWORD",
    "IssuedSecret",
    "dummy_verify",
    "hash_password",
    "hash_token",
    "issue",
    "mint_temporary_password",
    "mint_token",
    "needs_rehash",
    "parse_token",
    "revoke",
    "revoke_others",
    "token_matches",
    "verify_password",
]

ACTIVATION_LINK = "activation_link"
RESET_LINK = "reset_link"
TEMPORARY_PASSWORD = "temporary_password"
LINK_KINDS = frozenset({ACTIVATION_LINK, RESET_LINK})

TOKEN_BYTES = 32
# No 0/O, 1/l/I: a temporary password is read from a mail and typed by hand.
_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_PASSWORD_GROUPS, _PASSWORD_GROUP_LEN = 4, 5  # 20 symbols of 57: about 117 bits

_hasher = argon2.PasswordHasher()  # argon2id with the library's current RFC 9106 defaults
_DUMMY_HASH = _hasher.hash("never-a-real-password")


@dataclass(frozen=True)
class IssuedSecret:
    """A freshly minted secret: the plaintext exists only here and in the mail that carries it."""

    id: int
    kind: str
    plaintext: str
    expires_at: datetime

    def __repr__(self) -> str:  # keeps the plaintext out of tracebacks and logs
        return f"IssuedSecret(id={self.id}, kind={self.kind!r}, expires_at={self.expires_at!r})"


def mint_token() -> str:
    """The random part of a link token: 256 bits, URL-safe."""
    return _random.token_urlsafe(TOKEN_BYTES)


def mint_temporary_password() -> str:
    """A strong password that survives being read aloud or retyped: `Ab3de-Fg4hj-...`, always mixed case + digit."""
    while True:
        symbols = [_random.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_GROUPS * _PASSWORD_GROUP_LEN)]
        text = "".join(symbols)
        if any(c.islower() for c in text) and any(c.isupper() for c in text) and any(c.isdigit() for c in text):
            n = _PASSWORD_GROUP_LEN
            return "-".join(text[i : i + n] for i in range(0, len(text), n))


def hash_token(random_part: str) -> str:
    """SHA-256 of a link token's random part (hex)."""
    return hashlib.sha256(random_part.encode("utf-8")).hexdigest()


def parse_token(token: str) -> tuple[int, str] | None:
    """`(secret id, random part)` of a link token, or None when it is not shaped like one."""
    head, dot, random_part = token.strip().partition(".")
    if not dot or not head.isdigit() or len(random_part) < 16:
        return None
    return int(head), random_part


def token_matches(stored_hash: str, random_part: str) -> bool:
    """Constant-time comparison of a token against its stored hash."""
    return hmac.compare_digest(stored_hash, hash_token(random_part))


def hash_password(password: str) -> str:
    """argon2id hash of a password (temporary or chosen), in Unicode NFC (NIST SP 800-63B 5.1.1.2): "ó" typed as
    one character or as "o" and a combining accent, as keyboards and systems differ, is one password."""
    return _hasher.hash(unicodedata.normalize("NFC", password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches the argon2 hash; False for a mismatch or a missing/unreadable hash.

    The NFC form is tried first; a password that NFC changes is then tried as typed too, for a hash made before
    passwords were normalised (the only case that costs a second verification, whatever the account)."""
    if not stored_hash:
        return False
    normal = unicodedata.normalize("NFC", password)
    return _verifies(stored_hash, normal) or (normal != password and _verifies(stored_hash, password))


def _verifies(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def dummy_verify(password: str) -> None:
    """Spend the time of one verification, so an unknown login answers as slowly as a known one."""
    verify_password(_DUMMY_HASH, password)


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except argon2.exceptions.InvalidHashError:
        return True


_INSERT_SECRET = account_secrets.insert()
"""Built once: delivery mints one secret per mail."""


def issue(conn: sa.Connection, account_id: str, kind: str, *, now: datetime, expires_at: datetime) -> IssuedSecret:
    """Mint a secret of `kind` and store its hash; the caller commits before the plaintext leaves the process."""
    if kind == TEMPORARY_PASSWORD:
        plaintext = mint_temporary_password()
        stored = hash_password(plaintext)
    elif kind in LINK_KINDS:
        random_part = mint_token()
        stored = hash_token(random_part)
    else:
        raise ValueError(f"unknown secret kind {kind!r}")
    result = conn.execute(
        _INSERT_SECRET,
        {"account_id": account_id, "kind": kind, "secret_hash": stored, "created_at": now, "expires_at": expires_at},
    )
    secret_id = int(result.inserted_primary_key[0])
    if kind in LINK_KINDS:
        plaintext = f"{secret_id}.{random_part}"
    return IssuedSecret(id=secret_id, kind=kind, plaintext=plaintext, expires_at=expires_at)


def revoke(conn: sa.Connection, secret_id: int, *, now: datetime) -> None:
    """Revoke one secret (e.g. minted for a mail that did not go out)."""
    conn.execute(
        account_secrets.update()
        .where(account_secrets.c.id == secret_id, account_secrets.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


_REVOKE_OTHERS = (
    account_secrets.update()
    .where(
        account_secrets.c.account_id == sa.bindparam("b_account"),
        account_secrets.c.used_at.is_(None),
        account_secrets.c.revoked_at.is_(None),
        account_secrets.c.id != sa.bindparam("b_keep"),
    )
    .values(revoked_at=sa.bindparam("b_now", type_=account_secrets.c.revoked_at.type))
)
"""Built once: delivery runs it for every mail it records."""


def revoke_others(conn: sa.Connection, account_id: str, *, keep_id: int | None, now: datetime) -> None:
    """Revoke every unused secret of the account except `keep_id`: only the newest one stays valid."""
    if keep_id is not None:
        conn.execute(_REVOKE_OTHERS, {"b_account": account_id, "b_keep": keep_id, "b_now": now})
        return
    where: list[Any] = [
        account_secrets.c.account_id == account_id,
        account_secrets.c.used_at.is_(None),
        account_secrets.c.revoked_at.is_(None),
    ]
    conn.execute(account_secrets.update().where(*where).values(revoked_at=now))
