"""The customer-facing calls (scope `portal`), each one `integrator.portal` function with its verdict mapped to
HTTP: no rule of its own. A wrong password and an unknown login get the same 401 body (the portal verifies a
dummy hash for an unknown login, so the time is the same too); `blocked` is said only after a correct password.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from pydantic import BaseModel, Field

from integrator import portal
from integrator.api import impersonation
from integrator.api.accounts import account_by_id
from integrator.api.context import ApiContext, context_of
from integrator.api.errors import ApiError
from integrator.api.models import TOKEN_PATTERN, Account, ActivateIn, ChangePasswordIn, Error, LoginIn, ResetRequestIn
from integrator.api.oauth import BEARER_RESPONSES, Caller, require
from integrator.api.throttle import Policy, Throttled, claim, failed, forget
from integrator.logs import get_logger
from integrator.portal import Outcome, PortalResult
from integrator.records import normalize_login

__all__ = ["router"]

log = get_logger("api")
router = APIRouter(prefix="/v1", tags=["customer"], responses=BEARER_RESPONSES)
PortalCaller = Annotated[Caller, require("portal")]
Context = Annotated[ApiContext, Depends(context_of)]

_CREDENTIALS = {401: {"model": Error, "description": "invalid_credentials (any wrong login or password), expired"}}
_BLOCKED = {403: {"model": Error, "description": "blocked, with the reason (only after a correct password)"}}
_THROTTLED = {
    429: {
        "model": Error,
        "description": "throttled: too many recent failures for this login or address; the "
        "Retry-After header (and retry_after) say when to try again",
    }
}
_PROVEN = frozenset({Outcome.OK, Outcome.MUST_CHANGE_PASSWORD, Outcome.BLOCKED, Outcome.EXPIRED, Outcome.WEAK_PASSWORD})
"""Verdicts given only to someone who knew the password: the login's failures are forgotten."""
_WEAK = "weak_password with `rule` (too_short, too_long, common, same_as_login, same_as_old) and `reason`"
_TOKEN_ERRORS = {400: {"model": Error, "description": f"invalid_token, expired, or {_WEAK}"}}


class Done(BaseModel):
    """A credential was set: the account it belongs to."""

    account_id: str


def _customer_ip(request: Request, who: Caller, context: ApiContext) -> str | None:
    """The customer's address as the portal passes it, from a client trusted to pass it; else None."""
    api = context.config.api
    value = request.headers.get(api.client_ip_header)
    if value is None or who.client.name not in api.client_ip_trusted:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ApiError(400, "invalid_request", reason=f"{api.client_ip_header} is not an IP address") from None


def _login_key(login: str) -> str:
    return "login:" + (normalize_login(login) or login.strip().lower())


def _throttled(request: Request, who: Caller, context: ApiContext, login: str) -> list[tuple[str, Policy]]:
    """Count the attempt (address first, then login) or answer 429; returns the keys counted, the login's last."""
    key = _login_key(login)
    ip = _customer_ip(request, who, context)
    api = context.config.api
    keys = [("ip:" + ip, Policy(api.address_free_attempts))] if ip else []
    keys.append((key, Policy(api.login_free_attempts)))
    try:
        claim(context.engine, keys)
    except Throttled as exc:
        raise ApiError(
            429, "throttled", headers={"Retry-After": str(exc.retry_after)}, retry_after=exc.retry_after
        ) from None
    return keys


def _settle(context: ApiContext, keys: list[tuple[str, Policy]], result: PortalResult) -> None:
    """After the password check: a proven password clears the login's count, a failure starts the waits."""
    if result.outcome in _PROVEN:
        forget(context.engine, keys[-1][0])
    else:
        failed(context.engine, keys)


def _refusal(result: PortalResult) -> ApiError:
    """The HTTP answer to every verdict but success."""
    if result.outcome is Outcome.WRONG_CREDENTIALS:
        return ApiError(401, "invalid_credentials")
    if result.outcome is Outcome.BLOCKED:
        return ApiError(403, "blocked", reason=result.reason or "")
    if result.outcome is Outcome.EXPIRED:
        return ApiError(400, "expired")  # a link past its time (login and password answer 401 themselves)
    if result.outcome is Outcome.INVALID_TOKEN:
        return ApiError(400, "invalid_token")
    return ApiError(400, "weak_password", rule=result.rule, reason=result.reason)


@router.post("/login", responses={**_CREDENTIALS, **_BLOCKED, **_THROTTLED})
def login(
    body: LoginIn,
    request: Request,
    caller: PortalCaller,
    context: Context,
) -> Account:
    """Check a customer's login and password: 200 with the account (`must_change_password` true after a
    temporary password: send them to set their own)."""
    keys = _throttled(request, caller, context, body.login)
    with context.hashing():
        result = portal.login(context.engine, body.login, body.password)
    _settle(context, keys, result)
    if result.outcome is Outcome.EXPIRED:  # a correct temporary password, past its time
        raise ApiError(401, "expired", reason="the temporary password has expired: ask for a password reset")
    if result.outcome not in (Outcome.OK, Outcome.MUST_CHANGE_PASSWORD) or result.account_id is None:
        raise _refusal(result)
    account = account_by_id(context.engine, result.account_id)
    if account is None:  # deleted meanwhile: nobody logs in to what is gone
        raise ApiError(401, "invalid_credentials")
    if result.outcome is Outcome.MUST_CHANGE_PASSWORD:
        account = account.model_copy(update={"must_change_password": True})
    return account


def _set_by_token(context: ApiContext, body: ActivateIn) -> Done:
    with context.hashing():
        result = portal.activate(
            context.engine, body.token, body.password, min_length=context.config.accounts.min_password_length
        )
    if not result.ok or result.account_id is None:
        raise _refusal(result)
    return Done(account_id=result.account_id)


@router.post("/activate", responses=_TOKEN_ERRORS)
def activate(
    body: ActivateIn,
    _caller: PortalCaller,
    context: Context,
) -> Done:
    """Set the first password with the activation link's token; the account becomes active."""
    return _set_by_token(context, body)


@router.post("/password-reset/confirm", responses=_TOKEN_ERRORS)
def confirm_reset(
    body: ActivateIn,
    _caller: PortalCaller,
    context: Context,
) -> Done:
    """Set a new password with the reset link's token (once, before it expires, the newest link only)."""
    return _set_by_token(context, body)


@router.post("/password-reset", status_code=202)
def request_reset(
    body: ResetRequestIn,
    tasks: BackgroundTasks,
    _caller: PortalCaller,
    context: Context,
) -> dict[str, str]:
    """ "Forgot password": always 202, at once, whether the login exists or not; a reset mail (an activation
    for an account never activated) is queued in the background when the portal's rules allow one."""
    tasks.add_task(_queue_reset, context, body.login)
    return {"status": "accepted"}


def _queue_reset(context: ApiContext, login: str) -> None:
    try:
        portal.request_password_reset(context.engine, context.config, login)
    except Exception as exc:  # noqa: BLE001 - the caller already has its 202: log, never raise into the server
        log.error("password_reset_request_failed", error=type(exc).__name__)


@router.post(
    "/password", responses={**_CREDENTIALS, **_BLOCKED, **_THROTTLED, 400: {"model": Error, "description": _WEAK}}
)
def change_password(
    body: ChangePasswordIn,
    request: Request,
    caller: PortalCaller,
    context: Context,
) -> Done:
    """Change a password, proving the old one (or a temporary one, which activates a pending account)."""
    keys = _throttled(request, caller, context, body.login)
    with context.hashing():
        result = portal.change_password(
            context.engine, body.login, body.old, body.new, min_length=context.config.accounts.min_password_length
        )
    _settle(context, keys, result)
    if result.outcome is Outcome.EXPIRED:
        raise ApiError(401, "expired", reason="the temporary password has expired: ask for a password reset")
    if not result.ok or result.account_id is None:
        raise _refusal(result)
    return Done(account_id=result.account_id)


class TicketIn(BaseModel):
    ticket: str = Field(
        min_length=1, max_length=512, pattern=TOKEN_PATTERN, description="the ticket from the impersonation URL"
    )


class Impersonated(BaseModel):
    """The account to open a session as, and who does it: mark the session, and show it to the staff member."""

    account: Account
    impersonated_by: str
    reason: str


@router.post("/impersonation/redeem", responses={400: {"model": Error}, 409: {"model": Error}})
def redeem_impersonation(body: TicketIn, _caller: PortalCaller, context: Context) -> Impersonated:
    """Use a staff member's one-time ticket (once, within 60 s): 400 invalid_ticket or expired; 409 blocked or
    account_removed when the account changed meanwhile."""
    try:
        redeemed = impersonation.redeem(context.engine, body.ticket)
    except impersonation.TicketRefused as exc:
        raise ApiError(409 if exc.code in ("blocked", "account_removed") else 400, exc.code) from None
    account = account_by_id(context.engine, redeemed.account_id)
    if account is None:
        raise ApiError(409, "account_removed")
    return Impersonated(account=account, impersonated_by=redeemed.actor, reason=redeemed.reason)
