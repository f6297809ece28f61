"""Request and response bodies, as the OpenAPI document shows them to a portal's developer."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from integrator.store.queries import ACCOUNT_FIELDS

__all__ = [
    "Account",
    "ActivateIn",
    "ChangePasswordIn",
    "Error",
    "LoginIn",
    "ResetRequestIn",
    "account_from_row",
]

_LOGIN = Field(min_length=1, max_length=320, description="the e-mail, or the username where logins are usernames")
_PASSWORD = Field(min_length=1, max_length=1024)
_TOKEN = Field(min_length=1, max_length=512, description="the token from the mail's link")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    login: str = _LOGIN
    password: str = _PASSWORD


class ActivateIn(_In):
    token: str = _TOKEN
    password: str = _PASSWORD


class ResetRequestIn(_In):
    login: str = _LOGIN


class ChangePasswordIn(_In):
    login: str = _LOGIN
    old: str = _PASSWORD
    new: str = _PASSWORD


class Error(BaseModel):
    """Every error body: `error` is a code; `reason` says more where there is more to say."""

    error: str
    reason: str | None = None


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
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None
    last_login_at: datetime | None
    removed_at: datetime | None
    removed_reason: str | None


def account_from_row(row: Any) -> Account:
    """An `Account` from a row holding `ACCOUNT_FIELDS`."""
    data = {field: getattr(row, field) for field in ACCOUNT_FIELDS}
    data["blocked"] = bool(data["blocked"])
    data["must_change_password"] = bool(data["must_change_password"])
    data["attributes"] = json.loads(data["attributes"]) if data["attributes"] else {}
    return Account.model_validate(data)
