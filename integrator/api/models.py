"""Request and response bodies, as the OpenAPI document shows them to a portal's developer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from integrator.password_policy import MAX_LENGTH, Rule
from integrator.store.queries import ACCOUNT_FIELDS

__all__ = [
    "Account",
    "UtcDatetime",
    "ActivateIn",
    "ChangePasswordIn",
    "Error",
    "LoginIn",
    "TOKEN_PATTERN",
    "ResetRequestIn",
    "account_from_row",
]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A timestamp in RFC 3339 with its offset (`...Z`): the store keeps naive UTC."""

_LOGIN = Field(min_length=1, max_length=320, description="the e-mail, or the username where logins are usernames")
_PASSWORD = Field(min_length=1, max_length=1024)
_NEW_PASSWORD = Field(
    description=f"the password the customer chose: at least `[accounts] min_password_length` (8 or more) and at most "
    f"{MAX_LENGTH} characters, counted in Unicode code points after NFC; no composition rules; one on the list of "
    "common passwords is refused. Never cut: a longer one is refused (400 weak_password, rule too_long)."
)
TOKEN_PATTERN = r"^[0-9]{1,18}\.[A-Za-z0-9_-]{16,256}$"
_TOKEN = Field(
    min_length=1, max_length=512, pattern=TOKEN_PATTERN, description="the token from the mail's link (`?token=`)"
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    login: str = _LOGIN
    password: str = _PASSWORD


class ActivateIn(_In):
    token: str = _TOKEN
    password: str = _NEW_PASSWORD


class ResetRequestIn(_In):
    login: str = _LOGIN


class ChangePasswordIn(_In):
    login: str = _LOGIN
    old: str = _PASSWORD
    new: str = _NEW_PASSWORD


class Error(BaseModel):
    """Every error body: `error` is a code; `reason` says more where there is more to say."""

    error: str
    reason: str | None = None
    rule: Rule | None = Field(
        default=None,
        description="weak_password only: the rule that refused the new password (too_short, too_long, common, "
        "same_as_login, same_as_old); the password itself is never repeated",
    )


class Account(BaseModel):
    """An account as the portal sees it: identity, status, the synced fields and the attributes."""

    id: str
    erp_id: str
    contact_id: str | None = Field(description="the contact person; null for a per-customer account")
    login: str
    email: str | None = Field(description="where mail goes when the login is a username; null: the login")
    status: str = Field(description="pending_activation | active | removed")
    blocked: bool
    blocked_reason: str | None
    name: str | None
    contact_name: str | None
    symbol: str | None
    tax_id: str | None
    phone: str | None
    price_level: str | None
    discount: Decimal | None
    sales_rep: str | None
    sales_rep_email: str | None
    locale: str | None
    attributes: dict[str, Any] = Field(description="the [source] attributes columns passed through")
    must_change_password: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime
    activated_at: UtcDatetime | None
    last_login_at: UtcDatetime | None
    removed_at: UtcDatetime | None
    removed_reason: str | None


def account_from_row(row: Any) -> Account:
    """An `Account` from a row holding `ACCOUNT_FIELDS`."""
    data = {field: getattr(row, field) for field in ACCOUNT_FIELDS}
    data["blocked"] = bool(data["blocked"])
    data["must_change_password"] = bool(data["must_change_password"])
    data["attributes"] = json.loads(data["attributes"]) if data["attributes"] else {}
    return Account.model_validate(data)
