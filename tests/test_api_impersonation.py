"""Impersonation ("login as customer", made auditable): a one-time URL for a named staff member with a reason,
redeemed once within 60 s by the portal, refused for blocked and removed accounts, both steps in the account's
history; real uvicorn on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from support.api_server import RunningApi
from support.mailstore import events, seed_account

from integrator.clock import utcnow
from integrator.store.schema import accounts, impersonations

pytest_plugins = ["api_fixtures"]

REP = "l.wasowski@hurtownia.example.pl"


def _call(api: RunningApi, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
    with api.client() as http:
        return http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def test_a_ticket_logs_in_once_and_both_steps_name_the_staff_member(api: RunningApi) -> None:
    """201 with a portal URL carrying the ticket (valid 60 s); the portal redeems it for the account and who
    acts; a second use is invalid_ticket; the events record the actor and the reason."""
    account_id = seed_account(api.engine, "jan@example.pl", status="active")
    staff, portal = api.token("staff", name="crm"), api.token("portal")
    asked = _call(api, staff, f"/v1/accounts/{account_id}/impersonate", {"reason": "Zgłoszenie #4411", "actor": "Ewa"})
    assert asked.status_code == 201, asked.text
    body = asked.json()
    url = urlsplit(body["url"])
    assert (url.netloc, url.path) == ("b2b.hurtownia.example.pl", "/impersonate")
    assert parse_qs(url.query)["ticket"] == [body["ticket"]]
    redeemed = _call(api, portal, "/v1/impersonation/redeem", {"ticket": body["ticket"]})
    assert redeemed.status_code == 200
    assert (redeemed.json()["account"]["id"], redeemed.json()["impersonated_by"], redeemed.json()["reason"]) == (
        account_id,
        "Ewa (api:crm)",
        "Zgłoszenie #4411",
    )
    again = _call(api, portal, "/v1/impersonation/redeem", {"ticket": body["ticket"]})
    assert (again.status_code, again.json()) == (400, {"error": "invalid_ticket"})
    history = [(e["kind"], e["actor"], json.loads(e["changes"])["reason"]) for e in events(api.engine, account_id)]
    assert history == [
        ("impersonation_started", "Ewa (api:crm)", "Zgłoszenie #4411"),
        ("impersonation_login", "Ewa (api:crm)", "Zgłoszenie #4411"),
    ]
    with api.engine.connect() as conn:
        stored = conn.execute(impersonations.select()).mappings().one()
    assert body["ticket"].split(".")[1] not in str(dict(stored))


def test_an_expired_or_forged_ticket_is_refused(api: RunningApi) -> None:
    """A ticket past its 60 s is expired; one whose random part is wrong is invalid_ticket."""
    account_id = seed_account(api.engine, "jan@example.pl", status="active")
    staff, portal = api.token("staff"), api.token("portal")
    ticket = _call(api, staff, f"/v1/accounts/{account_id}/impersonate", {"reason": "x", "actor": "Ewa"}).json()[
        "ticket"
    ]
    forged = ticket.split(".")[0] + "." + "A" * 43
    assert _call(api, portal, "/v1/impersonation/redeem", {"ticket": forged}).json() == {"error": "invalid_ticket"}
    with api.engine.begin() as conn:
        conn.execute(impersonations.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    late = _call(api, portal, "/v1/impersonation/redeem", {"ticket": ticket})
    assert (late.status_code, late.json()) == (400, {"error": "expired"})


def test_blocked_and_removed_accounts_cannot_be_impersonated(api: RunningApi) -> None:
    """Asking for a blocked or removed account is 409; an account blocked after the ask is refused at use."""
    blocked = seed_account(api.engine, "zablokowany@example.pl", status="active", blocked=True, blocked_reason="x")
    removed = seed_account(api.engine, "stary@example.pl", status="removed")
    later = seed_account(api.engine, "jan@example.pl", status="active")
    staff, portal = api.token("staff"), api.token("portal")
    ask = {"reason": "Zgłoszenie", "actor": "Ewa"}
    assert _call(api, staff, f"/v1/accounts/{blocked}/impersonate", ask).json() == {"error": "blocked"}
    assert _call(api, staff, f"/v1/accounts/{removed}/impersonate", ask).json() == {"error": "account_removed"}
    ticket = _call(api, staff, f"/v1/accounts/{later}/impersonate", ask).json()["ticket"]
    with api.engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.id == later).values(blocked=True, blocked_reason="x"))
    refused = _call(api, portal, "/v1/impersonation/redeem", {"ticket": ticket})
    assert (refused.status_code, refused.json()) == (409, {"error": "blocked"})
    assert [e["kind"] for e in events(api.engine, later)] == ["impersonation_started"]


def test_who_may_ask_and_who_may_redeem(api: RunningApi) -> None:
    """A reason is required; a sales rep only for their own customer; a portal token cannot ask, a staff token
    cannot redeem."""
    own = seed_account(api.engine, "jan@example.pl", status="active", sales_rep_email=REP)
    other = seed_account(api.engine, "anna@example.pl", status="active", sales_rep_email="inny@example.pl")
    rep, portal, staff = api.token("sales_rep"), api.token("portal"), api.token("staff")
    assert _call(api, staff, f"/v1/accounts/{own}/impersonate", {"actor": "Ewa"}).status_code == 422
    assert _call(api, staff, f"/v1/accounts/{own}/impersonate", {"reason": " ", "actor": "Ewa"}).status_code == 400
    assert _call(api, rep, f"/v1/accounts/{own}/impersonate", {"reason": "x", "actor": REP}).status_code == 201
    theirs = _call(api, rep, f"/v1/accounts/{other}/impersonate", {"reason": "x", "actor": REP})
    assert (theirs.status_code, theirs.json()["error"]) == (403, "not_your_customer")
    assert _call(api, portal, f"/v1/accounts/{own}/impersonate", {"reason": "x", "actor": "Ewa"}).status_code == 403
    ticket = _call(api, staff, f"/v1/accounts/{own}/impersonate", {"reason": "x", "actor": "Ewa"}).json()["ticket"]
    assert _call(api, staff, "/v1/impersonation/redeem", {"ticket": ticket}).status_code == 403
