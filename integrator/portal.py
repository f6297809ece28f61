"""What the portal and ops call about credentials: activate, log in, change or reset a password, resend invites.

Portal-facing functions return a `PortalResult` (a verdict, not an exception). Ops-facing ones
(`reset_password`, `resend_activation`, `resend_all_pending`) queue a mail and raise `AccountNotFound` or
`CredentialsRefused` when the request makes no sense. Secrets are minted later, when the mail is delivered
(see `integrator.mail.delivery`); nothing here ever sees a plaintext secret except the one the user typed.

Rules:
* a link token works once, until it expires, and only while it is the newest secret of its account; it sets the
  password and activates a pending account (activation and reset links alike);
* a temporary password logs in with `must_change_password` until the password is changed, which activates a
  pending account; an expired one answers `expired`;
* the current password keeps working while a reset is outstanding (a stranger's reset request locks nobody out);
* `blocked` is reported only to someone who knew the password, with the reason;
* self-service reset answers the same for unknown, removed and blocked e-mails and is rate-limited per account;
  for an account still pending it sends the activation again, since that is what the customer is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator import password_policy
from integrator.clock import utcnow
from integrator.config import Config
from integrator.errors import IntegratorError
from integrator.faults import checkpoint
from integrator.logs import get_logger
from integrator.mail import secrets
from integrator.mail.outbox import queue_mail
from integrator.records import normalize_login
from integrator.store.schema import account_events, account_secrets, accounts, outbox

__all__ = [
    "PORTAL_ACTOR",
    "RESET_REQUESTS_PER_HOUR",
    "SELF_SERVICE_ACTOR",
    "AccountNotFound",
    "CredentialsRefused",
    "Outcome",
    "PortalResult",
    "activate",
    "change_password",
    "login",
    "request_password_reset",
    "resend_activation",
    "record_event",
    "resend_all_pending",
    "reset_password",
]

log = get_logger("portal")

PORTAL_ACTOR = "portal"
SELF_SERVICE_ACTOR = "self-service"
RESET_REQUESTS_PER_HOUR = 3
_BATCH = 500


class Outcome(StrEnum):
    """The portal's answer to a credential request."""

    OK = "ok"
    WRONG_CREDENTIALS = "wrong_credentials"
    BLOCKED = "blocked"
    MUST_CHANGE_PASSWORD = "must_change_password"
    EXPIRED = "expired"
    INVALID_TOKEN = "invalid_token"
    WEAK_PASSWORD = "weak_password"


@dataclass(frozen=True)
class PortalResult:
    """A verdict; `reason` is the block reason or what is wrong with a new password (then `rule` names the
    password policy's rule, see `integrator.password_policy.Rule`)."""

    outcome: Outcome
    account_id: str | None = None
    reason: str | None = None
    rule: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class AccountNotFound(IntegratorError, LookupError):
    """No live account has this login."""

    def __init__(self, login: str) -> None:
        super().__init__(f"no live account with login {login!r}")


class CredentialsRefused(IntegratorError):
    """The credential action does not fit the account's state; the message says what to do instead."""


def _refused(account_id: str, refusal: password_policy.PasswordRefused) -> PortalResult:
    return PortalResult(Outcome.WEAK_PASSWORD, account_id, refusal.reason, refusal.rule.value)


# -- shared pieces ---------------------------------------------------------------------------------------
def _live_account(conn: sa.Connection, login: str) -> Any:
    normalized = normalize_login(login)
    if not normalized:
        return None
    return conn.execute(sa.select(accounts).where(accounts.c.live_login == normalized)).first()


def _newest_temporary_password(conn: sa.Connection, account_id: str) -> Any:
    return conn.execute(
        sa.select(account_secrets)
        .where(
            account_secrets.c.account_id == account_id,
            account_secrets.c.kind == secrets.TEMPORARY_PASSWORD,
            account_secrets.c.used_at.is_(None),
            account_secrets.c.revoked_at.is_(None),
        )
        .order_by(account_secrets.c.id.desc())
        .limit(1)
    ).first()


def record_event(conn: sa.Connection, account: Any, kind: str, actor: str, now: datetime, **changes: Any) -> None:
    """One event in an account's history, outside a sync (portal, staff and API actions)."""
    conn.execute(
        account_events.insert().values(
            account_id=account.id,
            erp_id=account.erp_id,
            actor=actor,
            kind=kind,
            changes=json.dumps(changes, ensure_ascii=False) if changes else None,
            at=now,
        )
    )


@dataclass(frozen=True)
class _Authenticated:
    account: Any
    temporary: Any  # the temporary-password secret used, or None for the account's own password


def _authenticate(conn: sa.Connection, login_: str, password: str) -> _Authenticated | None:
    """Who `login_`/`password` are, by the account's password or its newest temporary password."""
    account = _live_account(conn, login_)
    if account is None:
        secrets.dummy_verify(password)
        return None
    if secrets.verify_password(account.password_hash, password):
        return _Authenticated(account, None)
    temporary = _newest_temporary_password(conn, account.id)
    if temporary is not None and secrets.verify_password(temporary.secret_hash, password):
        return _Authenticated(account, temporary)
    if account.password_hash is None and temporary is None:
        # A pending account has no hash to check: spend one verification anyway, or its quicker answer would
        # tell a caller that the login exists.
        secrets.dummy_verify(password)
    return None


class _AccountChanged(Exception):
    """The account left the state a credential action read it in (removed, or activated, meanwhile)."""


def _set_password(conn: sa.Connection, account: Any, password_hash: str, now: datetime, via: str) -> None:
    """Store a chosen password; a pending account becomes active; every outstanding secret is revoked.

    `account` was read before the (slow) password hash, in another transaction: the write holds only while the
    account is still in the status it was read in, so an activation racing a sync's removal never reopens the
    removed account. Raises `_AccountChanged` (the caller's transaction rolls back) when it is not."""
    activating = account.status == "pending_activation"
    values: dict[str, Any] = {"password_hash": password_hash, "must_change_password": False, "updated_at": now}
    if activating:
        values["status"] = "active"
    if account.activated_at is None:
        values["activated_at"] = now
    written = conn.execute(
        accounts.update()
        .where(accounts.c.id == account.id, accounts.c.status == account.status, accounts.c.status != "removed")
        .values(**values)
    ).rowcount
    if written != 1:
        raise _AccountChanged(account.id)
    secrets.revoke_others(conn, account.id, keep_id=None, now=now)
    record_event(conn, account, "activated" if activating else "password_changed", PORTAL_ACTOR, now, via=via)


def _admit(engine: Engine, login: str, password: str, now: Any) -> tuple[Any, PortalResult | None]:
    """Authenticate, then the checks every use of a password shares: an expired temporary one, a block."""
    with engine.connect() as conn:
        who = _authenticate(conn, login, password)
    if who is None:
        return None, PortalResult(Outcome.WRONG_CREDENTIALS)
    if who.temporary is not None and who.temporary.expires_at <= now:
        return who, PortalResult(Outcome.EXPIRED, who.account.id)
    if who.account.blocked:
        return who, PortalResult(Outcome.BLOCKED, who.account.id, who.account.blocked_reason)
    return who, None


# -- portal-facing ---------------------------------------------------------------------------------------
def login(engine: Engine, login: str, password: str) -> PortalResult:
    """Check a login: ok, wrong credentials, expired temporary password, blocked (with reason) or must change."""
    now = utcnow()
    who, refusal = _admit(engine, login, password, now)
    if refusal is not None:
        return refusal
    account = who.account
    values: dict[str, Any] = {"last_login_at": now}
    if who.temporary is None and secrets.needs_rehash(account.password_hash):
        values["password_hash"] = secrets.hash_password(password)
    with engine.begin() as conn:
        written = conn.execute(
            accounts.update().where(accounts.c.id == account.id, accounts.c.status != "removed").values(**values)
        ).rowcount
    if written != 1:  # removed since the password was checked: nobody logs in to a removed account
        return PortalResult(Outcome.WRONG_CREDENTIALS)
    if who.temporary is not None or account.must_change_password:
        return PortalResult(Outcome.MUST_CHANGE_PASSWORD, account.id)
    return PortalResult(Outcome.OK, account.id)


def activate(
    engine: Engine, token: str, new_password: str, *, min_length: int = password_policy.MIN_LENGTH
) -> PortalResult:
    """Set the password from a link token (activation or reset): works once, before expiry, newest only.

    The password must pass `integrator.password_policy.check` (`min_length`: `[accounts] min_password_length`)."""
    parsed = secrets.parse_token(token)
    if parsed is None:
        return PortalResult(Outcome.INVALID_TOKEN)
    secret_id, random_part = parsed
    now = utcnow()
    with engine.connect() as conn:
        secret = conn.execute(sa.select(account_secrets).where(account_secrets.c.id == secret_id)).first()
        if (
            secret is None
            or secret.kind not in secrets.LINK_KINDS
            or not secrets.token_matches(secret.secret_hash, random_part)
            or secret.used_at is not None
            or secret.revoked_at is not None
        ):
            return PortalResult(Outcome.INVALID_TOKEN)
        account = conn.execute(sa.select(accounts).where(accounts.c.id == secret.account_id)).first()
    if account is None or account.status == "removed":
        return PortalResult(Outcome.INVALID_TOKEN)
    if secret.expires_at <= now:
        return PortalResult(Outcome.EXPIRED, account.id)
    refusal = password_policy.check(new_password, login=account.login, min_length=min_length)
    if refusal is not None:
        return _refused(account.id, refusal)
    password_hash = secrets.hash_password(new_password)  # slow: before the write transaction
    checkpoint("portal.before_set_password")
    try:
        with engine.begin() as conn:
            claimed = conn.execute(
                account_secrets.update()
                .where(
                    account_secrets.c.id == secret.id,
                    account_secrets.c.used_at.is_(None),
                    account_secrets.c.revoked_at.is_(None),
                )
                .values(used_at=now)
            ).rowcount
            if claimed != 1:  # used or revoked by a concurrent request
                return PortalResult(Outcome.INVALID_TOKEN)
            _set_password(conn, account, password_hash, now, via=secret.kind)
    except _AccountChanged:  # removed (or activated) since the token was checked: nothing of it was written
        return PortalResult(Outcome.INVALID_TOKEN)
    log.info("password_set", account_id=account.id, via=secret.kind)
    return PortalResult(Outcome.OK, account.id)


def change_password(
    engine: Engine,
    login: str,
    old_password: str,
    new_password: str,
    *,
    min_length: int = password_policy.MIN_LENGTH,
) -> PortalResult:
    """Change the password, proving the old one (or the temporary one, which activates a pending account).

    The new one must pass `integrator.password_policy.check` (`min_length`: `[accounts] min_password_length`)."""
    now = utcnow()
    who, refusal = _admit(engine, login, old_password, now)
    if refusal is not None:
        return refusal
    account = who.account
    refusal = password_policy.check(new_password, login=account.login, min_length=min_length, old=old_password)
    if refusal is not None:
        return _refused(account.id, refusal)
    password_hash = secrets.hash_password(new_password)
    try:
        with engine.begin() as conn:
            if who.temporary is not None:
                conn.execute(
                    account_secrets.update().where(account_secrets.c.id == who.temporary.id).values(used_at=now)
                )
            _set_password(
                conn, account, password_hash, now, via=secrets.TEMPORARY_PASSWORD if who.temporary else "password"
            )
    except _AccountChanged:  # removed since the password was checked: as if the login did not exist
        return PortalResult(Outcome.WRONG_CREDENTIALS)
    log.info("password_changed", account_id=account.id)
    return PortalResult(Outcome.OK, account.id)


def request_password_reset(engine: Engine, config: Config, email: str) -> None:
    """Self-service "forgot password": queues a reset mail when it may; answers the same in every case.

    `config` is taken for the delivery settings a caller may want to apply; the limits are module constants.
    """
    del config  # reserved: reset limits become config keys
    now = utcnow()
    with engine.begin() as conn:
        account = _live_account(conn, email)
        if account is None or account.blocked:
            log.info("password_reset_request_ignored")
            return
        recent = conn.execute(
            sa.select(sa.func.count()).where(
                outbox.c.account_id == account.id,
                outbox.c.actor == SELF_SERVICE_ACTOR,
                outbox.c.created_at > now - timedelta(hours=1),
            )
        ).scalar_one()
        if recent >= RESET_REQUESTS_PER_HOUR:
            log.info("password_reset_rate_limited", account_id=account.id)
            return
        kind = "activation" if account.status == "pending_activation" else "password_reset"
        mail_id = queue_mail(
            conn,
            account_id=account.id,
            kind=kind,
            recipient=account.email or account.login,
            locale=account.locale,
            actor=SELF_SERVICE_ACTOR,
            now=now,
        )
        record_event(conn, account, "password_reset_requested", SELF_SERVICE_ACTOR, now, mail_id=mail_id)
    log.info("password_reset_requested", account_id=account.id, mail_id=mail_id, kind=kind)


# -- ops-facing ------------------------------------------------------------------------------------------
def _pending_mail(conn: sa.Connection, account: Any, kind: str) -> int | None:
    return conn.execute(
        sa.select(sa.func.max(outbox.c.id)).where(
            outbox.c.account_id == account.id,
            outbox.c.kind == kind,
            outbox.c.status == "pending",
            outbox.c.recipient == (account.email or account.login),
        )
    ).scalar()


def _queue_or_hurry(conn: sa.Connection, account: Any, kind: str, actor: str, now: datetime) -> int:
    """The id of a pending mail of `kind` for the account, made due now; a new one when there is none."""
    existing = _pending_mail(conn, account, kind)
    if existing is not None:
        conn.execute(outbox.update().where(outbox.c.id == existing).values(next_attempt_at=None))
        return int(existing)
    return queue_mail(
        conn,
        account_id=account.id,
        kind=kind,
        recipient=account.email or account.login,
        locale=account.locale,
        actor=actor,
        now=now,
    )


def reset_password(engine: Engine, login: str, actor: str) -> int:
    """Ops or a sales rep sends the customer a password reset; the actor is recorded. Returns the mail id."""
    now = utcnow()
    with engine.begin() as conn:
        account = _live_account(conn, login)
        if account is None:
            raise AccountNotFound(login)
        if account.status == "pending_activation":
            raise CredentialsRefused(
                f"{account.login} has not been activated yet: send the activation again with "
                f"`integrator resend-activation {account.login}`"
            )
        mail_id = _queue_or_hurry(conn, account, "password_reset", actor, now)
        record_event(conn, account, "password_reset_requested", actor, now, mail_id=mail_id)
    log.info("password_reset_requested", account_id=account.id, mail_id=mail_id, actor=actor)
    return mail_id


def resend_activation(engine: Engine, login: str, actor: str) -> int:
    """Send the activation again while the account is pending (only the newest secret will work)."""
    now = utcnow()
    with engine.begin() as conn:
        account = _live_account(conn, login)
        if account is None:
            raise AccountNotFound(login)
        if account.status != "pending_activation":
            raise CredentialsRefused(
                f"{account.login} is already activated: to give the customer a new password use "
                f"`integrator reset-password {account.login}`"
            )
        mail_id = _queue_or_hurry(conn, account, "activation", actor, now)
        record_event(conn, account, "activation_resent", actor, now, mail_id=mail_id)
    log.info("activation_resent", account_id=account.id, mail_id=mail_id, actor=actor)
    return mail_id


def resend_all_pending(engine: Engine, actor: str) -> int:
    """Bulk invite: resend the activation to every live, pending, unblocked account; returns how many."""
    done, last = 0, ""
    while True:
        now = utcnow()
        with engine.begin() as conn:
            batch = conn.execute(
                sa.select(accounts)
                .where(
                    accounts.c.status == "pending_activation",
                    accounts.c.live_login.is_not(None),
                    sa.not_(accounts.c.blocked),
                    accounts.c.id > last,
                )
                .order_by(accounts.c.id)
                .limit(_BATCH)
            ).all()
            for account in batch:
                mail_id = _queue_or_hurry(conn, account, "activation", actor, now)
                record_event(conn, account, "activation_resent", actor, now, mail_id=mail_id, bulk=True)
        if not batch:
            break
        done += len(batch)
        last = batch[-1].id
    log.info("activation_resent_to_all_pending", count=done, actor=actor)
    return done
