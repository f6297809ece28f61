"""The customer-facing calls (scope `portal`), each one `integrator.portal` function with its verdict mapped to
HTTP: no rule of its own. A wrong password and an unknown login get the same 401 body (the portal verifies a
dummy hash for an unknown login, so the time is the same too); `blocked` is said only after a correct password.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends
from pydantic import BaseModel

from integrator import portal
from integrator.api.accounts import account_by_id
from integrator.api.context import ApiContext, context_of
from integrator.api.errors import ApiError
from integrator.api.models import Account, ActivateIn, ChangePasswordIn, Error, LoginIn, ResetRequestIn
from integrator.api.oauth import Caller, require
from integrator.logs import get_logger
from integrator.portal import Outcome, PortalResult

__all__ = ["router"]

log = get_logger("api")
router = APIRouter(prefix="/v1", tags=["customer"])
PortalCaller = Annotated[Caller, require("portal")]
Context = Annotated[ApiContext, Depends(context_of)]

_CREDENTIALS = {401: {"model": Error, "description": "invalid_credentials (any wrong login or password), expired"}}
_BLOCKED = {403: {"model": Error, "description": "blocked, with the reason (only after a correct password)"}}
_TOKEN_ERRORS = {400: {"model": Error, "description": "invalid_token, expired or weak_password (with reason)"}}


class Done(BaseModel):
    """A credential was set: the account it belongs to."""

    account_id: str


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
    return ApiError(400, "weak_password", reason=result.reason)


@router.post("/login", responses={**_CREDENTIALS, **_BLOCKED})
def login(
    body: LoginIn,
    _caller: PortalCaller,
    context: Context,
) -> Account:
    """Check a customer's login and password: 200 with the account (`must_change_password` true after a
    temporary password: send them to set their own)."""
    with context.hashing():
        result = portal.login(context.engine, body.login, body.password)
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
        result = portal.activate(context.engine, body.token, body.password)
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


@router.post("/password", responses={**_CREDENTIALS, **_BLOCKED, 400: {"model": Error}})
def change_password(
    body: ChangePasswordIn,
    _caller: PortalCaller,
    context: Context,
) -> Done:
    """Change a password, proving the old one (or a temporary one, which activates a pending account)."""
    with context.hashing():
        result = portal.change_password(context.engine, body.login, body.old, body.new)
    if result.outcome is Outcome.EXPIRED:
        raise ApiError(401, "expired", reason="the temporary password has expired: ask for a password reset")
    if not result.ok or result.account_id is None:
        raise _refusal(result)
    return Done(account_id=result.account_id)
