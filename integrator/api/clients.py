"""The API's callers: clients with scopes, their secrets (argon2id hashes only) and their bearer tokens.

A client authenticates with its id and secret (HTTP Basic on `POST /oauth/token`) and gets a short-lived
bearer token; the token's SHA-256 is stored, never the token. Rotation gives a client a second secret while
the old one stays valid for a set time, so callers can be redeployed without an outage.
"""

from __future__ import annotations

import hashlib
import secrets as _random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.errors import IntegratorError
from integrator.mail import secrets
from integrator.store.schema import api_client_secrets, api_clients, api_tokens

__all__ = [
    "SCOPES",
    "ApiClient",
    "ClientExists",
    "ClientNotFound",
    "NewSecret",
    "TokenGrant",
    "add_client",
    "authenticate_client",
    "find_client",
    "find_token",
    "list_clients",
    "remove_client",
    "rotate_secret",
    "save_token",
    "token_hash",
]

SCOPES = ("portal", "staff", "sales_rep")
"""`portal`: the customer-facing calls and the change feed; `staff`: block, reset, resend, impersonate and read
any account; `sales_rep`: like staff, only for accounts whose `sales_rep_email` is the acting rep's."""

_SECRET_BYTES = 32


class ClientNotFound(IntegratorError, LookupError):
    """No API client has that name or id."""


class ClientExists(IntegratorError):
    """An API client already has that name."""


@dataclass(frozen=True)
class ApiClient:
    """A caller of the API, as the token endpoint and the routes see it."""

    id: str
    name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class NewSecret:
    """A client id and the secret just minted for it: the only moment the secret exists in plaintext."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # keeps the secret out of tracebacks and logs
        return f"NewSecret(client_id={self.client_id!r}, client_secret=<hidden>)"


@dataclass(frozen=True)
class TokenGrant:
    """What a valid bearer token stands for."""

    client: ApiClient
    scopes: frozenset[str]


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise IntegratorError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    if not chosen:
        raise IntegratorError(f"a client needs at least one scope: {', '.join(SCOPES)}")
    return chosen


def _mint_secret(conn: sa.Connection, client_id: str, now: datetime) -> str:
    secret = _random.token_urlsafe(_SECRET_BYTES)
    conn.execute(
        api_client_secrets.insert().values(
            client_id=client_id, secret_hash=secrets.hash_password(secret), created_at=now, expires_at=None
        )
    )
    return secret


def _find(conn: sa.Connection, key: str) -> Any:
    row = conn.execute(sa.select(api_clients).where(api_clients.c.name == key)).first()
    if row is None:
        row = conn.execute(sa.select(api_clients).where(api_clients.c.id == key)).first()
    if row is None:
        raise ClientNotFound(f"no API client with name or id {key!r}")
    return row


def add_client(engine: Engine, name: str, scopes: Iterable[str]) -> NewSecret:
    """Create a client; returns its id and its secret (shown once: only the hash is kept)."""
    name = name.strip()
    if not name:
        raise IntegratorError("an API client needs a name")
    chosen = _check_scopes(scopes)
    now = utcnow()
    client_id = "cl_" + _random.token_hex(12)
    with engine.begin() as conn:
        if conn.execute(sa.select(api_clients.c.id).where(api_clients.c.name == name)).first():
            raise ClientExists(f"an API client named {name!r} already exists")
        conn.execute(api_clients.insert().values(id=client_id, name=name, scopes=" ".join(chosen), created_at=now))
        secret = _mint_secret(conn, client_id, now)
    return NewSecret(client_id, secret)


def rotate_secret(engine: Engine, key: str, keep_old: timedelta) -> NewSecret:
    """A new secret for the client; every older one stays valid for `keep_old` more (never longer than it had)."""
    now = utcnow()
    deadline = now + keep_old
    with engine.begin() as conn:
        client = _find(conn, key)
        conn.execute(
            api_client_secrets.update()
            .where(
                api_client_secrets.c.client_id == client.id,
                sa.or_(api_client_secrets.c.expires_at.is_(None), api_client_secrets.c.expires_at > deadline),
            )
            .values(expires_at=deadline)
        )
        conn.execute(
            api_client_secrets.delete().where(
                api_client_secrets.c.client_id == client.id, api_client_secrets.c.expires_at <= now
            )
        )
        secret = _mint_secret(conn, client.id, now)
    return NewSecret(client.id, secret)


def remove_client(engine: Engine, key: str) -> str:
    """Delete a client, its secrets and its tokens (its callers are refused at once); returns its id."""
    with engine.begin() as conn:
        client = _find(conn, key)
        conn.execute(api_tokens.delete().where(api_tokens.c.client_id == client.id))
        conn.execute(api_client_secrets.delete().where(api_client_secrets.c.client_id == client.id))
        conn.execute(api_clients.delete().where(api_clients.c.id == client.id))
    return str(client.id)


def list_clients(engine: Engine) -> list[dict[str, Any]]:
    """Every client with its scopes and how many secrets are valid now (2 while a rotation is under way)."""
    now = utcnow()
    valid = sa.or_(api_client_secrets.c.expires_at.is_(None), api_client_secrets.c.expires_at > now)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.select(api_client_secrets.c.client_id, sa.func.count())
                .where(valid)
                .group_by(api_client_secrets.c.client_id)
            ).all()
        )
        rows = conn.execute(sa.select(api_clients).order_by(api_clients.c.name)).all()
    return [
        {
            "client_id": row.id,
            "name": row.name,
            "scopes": row.scopes.split(),
            "created_at": row.created_at,
            "valid_secrets": int(counts.get(row.id, 0)),
        }
        for row in rows
    ]


def find_client(engine: Engine, client_id: str) -> ApiClient | None:
    """The client with this id, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_clients).where(api_clients.c.id == client_id)).first()
    return ApiClient(row.id, row.name, tuple(row.scopes.split())) if row else None


def authenticate_client(engine: Engine, client_id: str, secret: str) -> ApiClient | None:
    """The client these credentials prove, or None; an unknown id costs one argon2 verification too."""
    now = utcnow()
    with engine.connect() as conn:
        client = conn.execute(sa.select(api_clients).where(api_clients.c.id == client_id)).first()
        hashes = (
            conn.execute(
                sa.select(api_client_secrets.c.secret_hash).where(
                    api_client_secrets.c.client_id == client_id,
                    sa.or_(api_client_secrets.c.expires_at.is_(None), api_client_secrets.c.expires_at > now),
                )
            )
            .scalars()
            .all()
            if client is not None
            else []
        )
    if not hashes:
        secrets.dummy_verify(secret)
        return None
    if any(secrets.verify_password(stored, secret) for stored in hashes):
        return ApiClient(client.id, client.name, tuple(client.scopes.split()))
    return None


def token_hash(token: str) -> str:
    """What the store keeps of a bearer token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def save_token(engine: Engine, token: str, client: ApiClient, scopes: Iterable[str], expires_in: int) -> None:
    """Record an issued token (its hash) and drop this client's expired ones."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(api_tokens.delete().where(api_tokens.c.client_id == client.id, api_tokens.c.expires_at <= now))
        conn.execute(
            api_tokens.insert().values(
                token_hash=token_hash(token),
                client_id=client.id,
                scopes=" ".join(scopes),
                issued_at=now,
                expires_at=now + timedelta(seconds=expires_in),
            )
        )


def find_token(engine: Engine, token: str) -> TokenGrant | None:
    """The grant a bearer token carries while it is valid and its client exists, else None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(api_tokens.c.scopes, api_clients.c.id, api_clients.c.name, api_clients.c.scopes.label("all"))
            .join(api_clients, api_clients.c.id == api_tokens.c.client_id)
            .where(api_tokens.c.token_hash == token_hash(token), api_tokens.c.expires_at > utcnow())
        ).first()
    if row is None:
        return None
    return TokenGrant(ApiClient(row.id, row.name, tuple(row.all.split())), frozenset(row.scopes.split()))
