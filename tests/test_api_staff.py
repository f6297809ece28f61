"""Staff calls of the portal API: block, unblock, reset, resend and account reads, with the acting person
recorded, and a sales rep kept to their own customers; real uvicorn on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from support.api_server import RunningApi
from support.mailstore import account_row, events, seed_account

from integrator.mail.secrets import hash_password

pytest_plugins = ["api_fixtures"]

REP = "l.wasowski@hurtownia.example.pl"
OTHER_REP = "a.nowak@hurtownia.example.pl"


def _call(api: RunningApi, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with api.client() as http:
        return http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_staff_block_and_unblock_record_the_person_and_the_client(api: RunningApi) -> None:
    """Block with a reason answers the blocked account; the event names the actor and the API client; the
    blocked customer's login then answers 403 blocked with that reason; unblock lifts it."""
    account_id = seed_account(api.engine, "jan@example.pl", status="active", password_hash=hash_password("Hasło-1234"))
    staff = api.token("staff", name="crm")
    done = _call(
        api, staff, "POST", f"/v1/accounts/{account_id}/block", json={"reason": "Zaległe płatności", "actor": "Ewa"}
    )
    assert done.status_code == 200 and (done.json()["blocked"], done.json()["blocked_reason"]) == (
        True,
        "Zaległe płatności",
    )
    last = events(api.engine, account_id)[-1]
    assert (last["kind"], last["actor"]) == ("blocked", "Ewa (api:crm)")
    portal = api.token("portal")
    refused = _call(api, portal, "POST", "/v1/login", json={"login": "jan@example.pl", "password": "Hasło-1234"})
    assert (refused.status_code, refused.json()) == (403, {"error": "blocked", "reason": "Zaległe płatności"})
    lifted = _call(api, staff, "POST", f"/v1/accounts/{account_id}/unblock", json={"actor": "Ewa"})
    assert lifted.status_code == 200 and lifted.json()["blocked"] is False
    assert events(api.engine, account_id)[-1]["kind"] == "unblocked"
    blank = _call(api, staff, "POST", f"/v1/accounts/{account_id}/block", json={"reason": "  ", "actor": "Ewa"})
    assert (blank.status_code, blank.json()["error"]) == (400, "invalid_request")
    no_actor = _call(api, staff, "POST", f"/v1/accounts/{account_id}/unblock", json={})
    assert (no_actor.status_code, no_actor.json()["error"]) == (422, "invalid_request")


def test_reset_and_resend_queue_mail_and_refuse_what_does_not_fit(api: RunningApi) -> None:
    """Reset of an active account and resend to a pending one are 202 with the mail id, the actor recorded;
    the other way round is 409 refused with the reason; an unknown id is 404; a removed account is 409."""
    active = seed_account(api.engine, "jan@example.pl", status="active")
    pending = seed_account(api.engine, "anna@example.pl")
    removed = seed_account(api.engine, "stary@example.pl", status="removed")
    staff = api.token("staff", name="crm")
    reset = _call(api, staff, "POST", f"/v1/accounts/{active}/reset-password", json={"actor": "Ewa"})
    assert reset.status_code == 202 and isinstance(reset.json()["mail_id"], int)
    assert events(api.engine, active)[-1]["actor"] == "Ewa (api:crm)"
    resend = _call(api, staff, "POST", f"/v1/accounts/{pending}/resend-activation", json={"actor": "Ewa"})
    assert resend.status_code == 202
    wrong_way = _call(api, staff, "POST", f"/v1/accounts/{pending}/reset-password", json={"actor": "Ewa"})
    assert (wrong_way.status_code, wrong_way.json()["error"]) == (409, "refused")
    assert "not been activated" in wrong_way.json()["reason"]
    again = _call(api, staff, "POST", f"/v1/accounts/{active}/resend-activation", json={"actor": "Ewa"})
    assert (again.status_code, again.json()["error"]) == (409, "refused")
    missing = _call(api, staff, "POST", "/v1/accounts/nope/reset-password", json={"actor": "Ewa"})
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    gone = _call(api, staff, "POST", f"/v1/accounts/{removed}/block", json={"reason": "x", "actor": "Ewa"})
    assert (gone.status_code, gone.json()) == (409, {"error": "account_removed"})


def test_account_reads_by_id_and_by_login(api: RunningApi) -> None:
    """GET by id answers live and removed accounts; GET ?login= answers the live holder (normalised) or none."""
    account_id = seed_account(api.engine, "jan@example.pl", status="active")
    removed = seed_account(api.engine, "stary@example.pl", status="removed")
    staff = api.token("staff")
    one = _call(api, staff, "GET", f"/v1/accounts/{account_id}", params={"actor": "Ewa"})
    assert one.status_code == 200 and one.json()["login"] == "jan@example.pl"
    assert _call(api, staff, "GET", f"/v1/accounts/{removed}", params={"actor": "Ewa"}).json()["status"] == "removed"
    found = _call(api, staff, "GET", "/v1/accounts", params={"login": " JAN@example.pl", "actor": "Ewa"})
    assert [a["id"] for a in found.json()["accounts"]] == [account_id]
    none = _call(api, staff, "GET", "/v1/accounts", params={"login": "stary@example.pl", "actor": "Ewa"})
    assert none.json() == {"accounts": []}
    no_actor = _call(api, staff, "GET", f"/v1/accounts/{account_id}")
    assert (no_actor.status_code, no_actor.json()["error"]) == (422, "invalid_request")


def test_a_sales_rep_acts_only_on_their_own_customers(api: RunningApi) -> None:
    """A sales_rep token blocks and reads an account whose sales_rep_email is the actor's; another rep's
    customer is 403 not_your_customer (and left unblocked) and missing from a search; a portal token is 403."""
    own = seed_account(api.engine, "jan@example.pl", status="active", sales_rep_email=REP)
    other = seed_account(api.engine, "anna@example.pl", status="active", sales_rep_email=OTHER_REP)
    rep = api.token("sales_rep", name="crm-rep")
    mine = _call(api, rep, "POST", f"/v1/accounts/{own}/block", json={"reason": "Limit", "actor": REP.upper()})
    assert mine.status_code == 200 and mine.json()["blocked"] is True
    assert events(api.engine, own)[-1]["actor"] == f"{REP.upper()} (api:crm-rep)"
    theirs = _call(api, rep, "POST", f"/v1/accounts/{other}/block", json={"reason": "Limit", "actor": REP})
    assert (theirs.status_code, theirs.json()["error"]) == (403, "not_your_customer")
    assert account_row(api.engine, other)["blocked"] is False
    read = _call(api, rep, "GET", f"/v1/accounts/{other}", params={"actor": REP})
    assert read.status_code == 403
    search = _call(api, rep, "GET", "/v1/accounts", params={"login": "anna@example.pl", "actor": REP})
    assert search.json() == {"accounts": []}
    reset = _call(api, rep, "POST", f"/v1/accounts/{other}/reset-password", json={"actor": REP})
    assert reset.status_code == 403
    portal = api.token("portal")
    assert _call(api, portal, "GET", f"/v1/accounts/{own}", params={"actor": REP}).status_code == 403
