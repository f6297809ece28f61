"""Composing one mail: which secret it carries, the template variables, and the finished `Outgoing`.

Template variables (every template may use them): `locale`, `customer_name`, `contact_name` (the contact person
an account is for, with a contacts source; else None), `login` (the account's: an e-mail, or a username with
`[accounts] login = "username"`), `old_login`, `portal_url`, `link` (link mode), `temporary_password` (password
mode), `expires_at` (formatted, local time), `valid_hours`, `sender`, `sender_name`, `sender_email`, `reply_to`,
`sales_rep_name`, `sales_rep_email`, `attributes` (a dict of the `[source] attributes` columns; empty when none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from integrator.config import Config
from integrator.mail import secrets
from integrator.mail.message import Outgoing, build_message, build_raw, parse_sender, raw_possible
from integrator.mail.templates import normalize_locale, render

__all__ = [
    "SecretPlan",
    "compose",
    "format_expiry",
    "secret_plan",
]


@dataclass(frozen=True)
class SecretPlan:
    """The secret a mail carries: its kind and how long it stays valid."""

    kind: str
    valid_hours: int


def secret_plan(mail_kind: str, config: Config) -> SecretPlan | None:
    """What a mail of `mail_kind` must carry in the configured activation mode (None: no secret)."""
    link_mode = config.accounts.activation == "link"
    if mail_kind == "activation":
        kind = secrets.ACTIVATION_LINK if link_mode else secrets.TEMPORARY_PASSWORD
        return SecretPlan(kind, config.accounts.activation_valid_hours)
    if mail_kind == "password_reset":
        kind = secrets.RESET_LINK if link_mode else secrets.TEMPORARY_PASSWORD
        return SecretPlan(kind, config.accounts.reset_valid_hours)
    return None


def format_expiry(moment: datetime, locale: str, timezone: str = "Europe/Warsaw") -> str:
    """A naive-UTC instant as the customer reads it: local wall time with the zone's abbreviation."""
    try:
        zone: Any = ZoneInfo(timezone)
    except ZoneInfoNotFoundError:  # no tz database (bare Windows without tzdata): say UTC honestly
        zone = UTC
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    pattern = "%d.%m.%Y %H:%M" if locale == "pl" else "%Y-%m-%d %H:%M"
    return f"{local.strftime(pattern)} ({local.tzname()})"


def _link(config: Config, mail_kind: str, token: str) -> str:
    path = config.accounts.activation_path if mail_kind == "activation" else config.accounts.reset_path
    return f"{config.accounts.portal_url.rstrip('/')}/{path.lstrip('/')}?token={quote(token, safe='')}"


def template_context(
    config: Config,
    *,
    mail: Mapping[str, Any],
    account: Mapping[str, Any],
    locale: str,
    secret: secrets.IssuedSecret | None,
) -> dict[str, Any]:
    """Every variable a template may use, filled for this mail."""
    sender_name, sender_email = parse_sender(config.mail.sender)
    extra = json.loads(mail["context"]) if mail.get("context") else {}
    context: dict[str, Any] = {
        "locale": locale,
        "customer_name": account.get("name"),
        "contact_name": account.get("contact_name"),
        "login": account.get("login") or mail["recipient"],  # the recipient is the e-mail when logins are usernames
        "old_login": extra.get("old_login"),
        "portal_url": config.accounts.portal_url,
        "link": None,
        "temporary_password": None,
        "expires_at": None,
        "valid_hours": None,
        "sender": config.mail.sender,
        "sender_name": sender_name or sender_email,
        "sender_email": sender_email,
        "reply_to": config.mail.reply_to,
        "sales_rep_name": account.get("sales_rep"),
        "sales_rep_email": account.get("sales_rep_email"),
        "attributes": json.loads(account["attributes"]) if account.get("attributes") else {},
    }
    if secret is not None:
        if secret.kind in secrets.LINK_KINDS:
            context["link"] = _link(config, mail["kind"], secret.plaintext)
        else:
            context["temporary_password"] = secret.plaintext
        context["expires_at"] = format_expiry(secret.expires_at, locale, config.mail.timezone)
        plan = secret_plan(mail["kind"], config)
        context["valid_hours"] = plan.valid_hours if plan else None
    return context


def compose(
    config: Config,
    env: jinja2.Environment,
    *,
    mail: Mapping[str, Any],
    account: Mapping[str, Any],
    secret: secrets.IssuedSecret | None,
) -> Outgoing:
    """Render and build the message for one outbox row (raises Jinja2's errors for a broken template)."""
    locale = normalize_locale(mail.get("locale"), account.get("locale"), default=config.accounts.default_locale)
    mode = config.accounts.activation
    context = template_context(config, mail=mail, account=account, locale=locale, secret=secret)
    rendered = render(env, mail["kind"], mode, locale, context)
    _, envelope_from = parse_sender(config.mail.sender)
    reply_address = parse_sender(config.mail.reply_to)[1] if config.mail.reply_to else ""
    fields: dict[str, Any] = {
        "sender": config.mail.sender,
        "recipient": mail["recipient"],
        "recipient_name": account.get("contact_name") or account.get("name"),
        "reply_to": config.mail.reply_to,
        "locale": locale,
        "mail_id": mail["id"],
    }
    outgoing = {"mail_id": mail["id"], "kind": mail["kind"], "envelope_from": envelope_from}
    outgoing["recipient"] = mail["recipient"]
    if raw_possible(mail["recipient"], envelope_from, reply_address):
        return Outgoing(**outgoing, raw=build_raw(rendered, **fields))
    message = build_message(rendered, **fields)  # an address needs SMTPUTF8: smtplib reads it from the message
    # Its bytes are an internationalised message (RFC 6532, UTF-8 headers), as smtplib sends it under SMTPUTF8.
    return Outgoing(**outgoing, raw=message.as_bytes(policy=message.policy.clone(utf8=True)), built=message)
