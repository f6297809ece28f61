"""Staff calls (scope `staff`, or `sales_rep` for the rep's own customers): block, unblock, reset, resend,
and reading accounts, each naming the acting person (`actor`), who is recorded in the account's history with
the client that called. The actions are `integrator.admin` and `integrator.portal` functions, as the CLI's.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from integrator import admin, portal
from integrator.api import impersonation
from integrator.api.accounts import account_by_id, live_account_by_login
from integrator.api.context import ApiContext, context_of
from integrator.api.errors import ApiError
from integrator.api.models import Account, Error, UtcDatetime
from integrator.api.oauth import BEARER_RESPONSES, Caller, require
from integrator.errors import IntegratorError

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["staff"], responses=BEARER_RESPONSES)
StaffCaller = Annotated[Caller, require("staff", "sales_rep")]
Context = Annotated[ApiContext, Depends(context_of)]
_ACTOR = Field(min_length=1, max_length=200, description="the person acting (a sales rep: their e-mail)")
ActorQuery = Annotated[str, Query(min_length=1, max_length=200, description="the person acting")]

_REFUSALS = {
    403: {"model": Error, "description": "not_your_customer: a sales rep acting on another rep's account"},
    404: {"model": Error, "description": "not_found"},
    409: {"model": Error, "description": "account_removed, or refused (with reason) by the account's state"},
}


class ActorIn(BaseModel):
    actor: str = _ACTOR


class BlockIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="shown to the customer by the portal")
    actor: str = _ACTOR


class MailQueued(BaseModel):
    """A mail was queued (or an equal pending one made due now); it goes out with the next delivery."""

    mail_id: int


def _may_see(who: Caller, actor: str, account: Account) -> bool:
    if "staff" in who.scopes:
        return True
    return (account.sales_rep_email or "").strip().lower() == actor.strip().lower()


def _target(context: ApiContext, who: Caller, account_id: str, actor: str, *, live: bool = True) -> Account:
    account = account_by_id(context.engine, account_id)
    if account is None:
        raise ApiError(404, "not_found", reason=f"no account with id {account_id!r}")
    if not _may_see(who, actor, account):
        raise ApiError(403, "not_your_customer", reason="a sales rep acts only on accounts whose sales rep they are")
    if live and account.status == "removed":
        raise ApiError(409, "account_removed")
    return account


def _recorded(who: Caller, actor: str) -> str:
    """The actor as the account's history keeps it: the person, and the API client they acted through."""
    return f"{actor.strip()} (api:{who.client.name})"[:256]


def _reread(context: ApiContext, account_id: str) -> Account:
    account = account_by_id(context.engine, account_id)
    assert account is not None
    return account


@router.get("/accounts/{account_id}", responses=_REFUSALS)
def get_account(account_id: str, actor: ActorQuery, who: StaffCaller, context: Context) -> Account:
    """One account by its id, live or removed."""
    return _target(context, who, account_id, actor, live=False)


class AccountList(BaseModel):
    accounts: list[Account]


@router.get("/accounts")
def find_accounts(
    login: Annotated[str, Query(min_length=1, max_length=320)], actor: ActorQuery, who: StaffCaller, context: Context
) -> AccountList:
    """The live account holding a login (an e-mail or a username): a list of one, or empty."""
    account = live_account_by_login(context.engine, login)
    found = [account] if account is not None and _may_see(who, actor, account) else []
    return AccountList(accounts=found)


@router.post("/accounts/{account_id}/block", responses=_REFUSALS)
def block(account_id: str, body: BlockIn, who: StaffCaller, context: Context) -> Account:
    """Block the account: it cannot log in (the portal shows the reason) until unblocked; syncs never unblock."""
    account = _target(context, who, account_id, body.actor)
    try:
        admin.block(context.engine, account.login, body.reason, _recorded(who, body.actor))
    except admin.AccountNotFound:
        raise ApiError(409, "account_removed") from None
    except IntegratorError as exc:
        raise ApiError(400, "invalid_request", reason=str(exc)) from None
    return _reread(context, account_id)


@router.post("/accounts/{account_id}/unblock", responses=_REFUSALS)
def unblock(account_id: str, body: ActorIn, who: StaffCaller, context: Context) -> Account:
    """Lift the block."""
    account = _target(context, who, account_id, body.actor)
    try:
        admin.unblock(context.engine, account.login, _recorded(who, body.actor))
    except admin.AccountNotFound:
        raise ApiError(409, "account_removed") from None
    return _reread(context, account_id)


def _queue(context: ApiContext, who: Caller, account_id: str, actor: str, action: str) -> MailQueued:
    account = _target(context, who, account_id, actor)
    call = portal.reset_password if action == "reset" else portal.resend_activation
    try:
        mail_id = call(context.engine, account.login, _recorded(who, actor))
    except portal.AccountNotFound:
        raise ApiError(409, "account_removed") from None
    except portal.CredentialsRefused as exc:
        raise ApiError(409, "refused", reason=str(exc)) from None
    return MailQueued(mail_id=mail_id)


@router.post("/accounts/{account_id}/reset-password", status_code=202, responses=_REFUSALS)
def reset_password(account_id: str, body: ActorIn, who: StaffCaller, context: Context) -> MailQueued:
    """Send the customer a password reset (a link or a temporary password, per [accounts] activation): staff
    never choose or see a password. Refused (409) for an account not activated yet: resend the activation."""
    return _queue(context, who, account_id, body.actor, "reset")


@router.post("/accounts/{account_id}/resend-activation", status_code=202, responses=_REFUSALS)
def resend_activation(account_id: str, body: ActorIn, who: StaffCaller, context: Context) -> MailQueued:
    """Send the activation again (only the newest one works). Refused (409) once activated: reset instead."""
    return _queue(context, who, account_id, body.actor, "resend")


class ImpersonateIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why; kept in the account's history")
    actor: str = _ACTOR


class LoginUrl(BaseModel):
    """A one-time login URL to the portal as the customer."""

    url: str = Field(description="the portal's impersonation page with the one-time ticket")
    ticket: str = Field(description="the ticket alone, for a portal that builds its own URL")
    expires_at: UtcDatetime


@router.post("/accounts/{account_id}/impersonate", status_code=201, responses=_REFUSALS)
def impersonate(account_id: str, body: ImpersonateIn, who: StaffCaller, context: Context) -> LoginUrl:
    """A one-time login URL as the customer, valid 60 s, for the named person and a required reason; refused
    (409 blocked, account_removed) for blocked or removed accounts. Asking and using it are account events."""
    _target(context, who, account_id, body.actor)
    if not body.reason.strip():
        raise ApiError(400, "invalid_request", reason="an impersonation needs a reason")
    try:
        ticket = impersonation.start(context.engine, account_id, _recorded(who, body.actor), body.reason.strip())
    except impersonation.TicketRefused as exc:
        raise ApiError(409, exc.code) from None
    base = context.config.accounts.portal_url.rstrip("/")
    path = "/" + context.config.api.impersonation_path.lstrip("/")
    url = f"{base}{path}?ticket={quote(ticket.ticket, safe='')}"
    return LoginUrl(url=url, ticket=ticket.ticket, expires_at=ticket.expires_at)
