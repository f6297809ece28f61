"""The customer-facing calls of the portal API (scope `portal`) against a real uvicorn on SQLite and PostgreSQL:
every verdict of `integrator.portal` as its HTTP answer, the enumeration checks (body, status and time of an
unknown login against a wrong password), tokens and scopes, and no secret in answers or logs."""

from __future__ import annotations

import io
import json
import statistics
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from support.api_server import RunningApi, real_argon2
from support.mailstore import account_row, seed_account

from integrator.clock import utcnow
from integrator.config import LoggingConfig
from integrator.logs import configure_logging
from integrator.mail import secrets
from integrator.mail.secrets import hash_password
from integrator.store.schema import accounts, api_tokens, outbox

pytest_plugins = ["api_fixtures"]

PASSWORD = "Dobre-Hasło-123"
NEW_PASSWORD = "Całkiem-Nowe-Hasło-456"


def _active(engine: Engine, login: str = "jan@example.pl") -> str:
    account_id = seed_account(engine, login, status="active", password_hash=hash_password(PASSWORD))
    with engine.begin() as conn:
        conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(contact_id="K-7", contact_name="Jan Kowalski", attributes=json.dumps({"limit": "1500.00"}))
        )
    return account_id


def _issue(engine: Engine, account_id: str, kind: str, *, expired: bool = False) -> str:
    now = utcnow()
    with engine.begin() as conn:
        issued = secrets.issue(
            conn, account_id, kind, now=now, expires_at=now + (timedelta(seconds=-1) if expired else timedelta(hours=1))
        )
    return issued.plaintext


def _post(api: RunningApi, token: str, path: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
    with api.client() as http:
        answer = http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer.json()


def test_login_answers_the_account_with_its_contact_and_attributes(api: RunningApi) -> None:
    """200 with id, erp_id, contact_id, login, the synced fields, attributes and must_change_password."""
    account_id = _active(api.engine)
    status, body = _post(api, api.token("portal"), "/v1/login", {"login": " Jan@Example.PL", "password": PASSWORD})
    assert status == 200
    assert (body["id"], body["login"], body["contact_id"], body["contact_name"]) == (
        account_id,
        "jan@example.pl",
        "K-7",
        "Jan Kowalski",
    )
    assert body["attributes"] == {"limit": "1500.00"} and body["must_change_password"] is False
    assert body["sales_rep_email"] == "l.wasowski@hurtownia.example.pl" and "password_hash" not in body
    assert account_row(api.engine, account_id)["last_login_at"] is not None


def test_unknown_login_and_wrong_password_are_one_answer_in_body_status_and_time(
    api: RunningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """401 invalid_credentials with the same body; with the product's argon2 parameters the median times of the
    two differ by less than half."""
    real_argon2(monkeypatch)
    _active(api.engine)
    token = api.token("portal")
    wrong = _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": "zle-haslo-123"})
    unknown = _post(api, token, "/v1/login", {"login": "nikt@example.pl", "password": "zle-haslo-123"})
    assert wrong == unknown == (401, {"error": "invalid_credentials"})

    def timed(login: str) -> float:
        with api.client() as http:
            started = time.perf_counter()
            http.post(
                "/v1/login",
                json={"login": login, "password": "zle-haslo-123"},
                headers={"Authorization": f"Bearer {token}"},
            )
            return time.perf_counter() - started

    known_times, unknown_times = [], []
    for _ in range(6):
        known_times.append(timed("jan@example.pl"))
        unknown_times.append(timed("nikt@example.pl"))
    known, stranger = statistics.median(known_times), statistics.median(unknown_times)
    assert 0.5 < known / stranger < 2, (known_times, unknown_times)


def test_blocked_is_said_with_its_reason_only_after_the_right_password(api: RunningApi) -> None:
    """403 blocked + reason for the right password; a wrong one stays 401 without the reason."""
    account_id = _active(api.engine)
    with api.engine.begin() as conn:
        conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(blocked=True, blocked_reason="Zaległe płatności")
        )
    token = api.token("portal")
    assert _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": PASSWORD}) == (
        403,
        {"error": "blocked", "reason": "Zaległe płatności"},
    )
    assert _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": "zle"}) == (
        401,
        {"error": "invalid_credentials"},
    )


def test_temporary_password_logs_in_with_must_change_then_password_change_activates(api: RunningApi) -> None:
    """A pending account's temporary password: 200 with must_change_password true; POST /v1/password with it
    as `old` sets the customer's own, which then logs in plainly; an expired temporary password is 401 expired."""
    account_id = seed_account(api.engine, "anna@example.pl")
    temporary = _issue(api.engine, account_id, secrets.TEMPORARY_PASSWORD)
    token = api.token("portal")
    status, body = _post(api, token, "/v1/login", {"login": "anna@example.pl", "password": temporary})
    assert (status, body["must_change_password"], body["status"]) == (200, True, "pending_activation")
    assert _post(api, token, "/v1/password", {"login": "anna@example.pl", "old": temporary, "new": "krótkie"}) == (
        400,
        {"error": "weak_password", "reason": "the password must have at least 10 characters"},
    )
    changed = _post(api, token, "/v1/password", {"login": "anna@example.pl", "old": temporary, "new": NEW_PASSWORD})
    assert changed == (200, {"account_id": account_id})
    status, body = _post(api, token, "/v1/login", {"login": "anna@example.pl", "password": NEW_PASSWORD})
    assert (status, body["must_change_password"], body["status"]) == (200, False, "active")
    other = seed_account(api.engine, "ewa@example.pl")
    stale = _issue(api.engine, other, secrets.TEMPORARY_PASSWORD, expired=True)
    status, body = _post(api, token, "/v1/login", {"login": "ewa@example.pl", "password": stale})
    assert (status, body["error"]) == (401, "expired")


def test_password_change_needs_the_old_password(api: RunningApi) -> None:
    """A wrong `old` is 401 invalid_credentials and changes nothing; the right one changes the password."""
    _active(api.engine)
    token = api.token("portal")
    assert _post(api, token, "/v1/password", {"login": "jan@example.pl", "old": "zle-haslo", "new": NEW_PASSWORD}) == (
        401,
        {"error": "invalid_credentials"},
    )
    assert (
        _post(api, token, "/v1/password", {"login": "jan@example.pl", "old": PASSWORD, "new": NEW_PASSWORD})[0] == 200
    )
    assert _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": PASSWORD})[0] == 401
    assert _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": NEW_PASSWORD})[0] == 200


def test_activation_link_works_once_and_before_expiry(api: RunningApi) -> None:
    """The token sets the password (200, account active); again it is invalid_token; an expired one is
    expired; a weak password is weak_password with the reason; garbage is invalid_token."""
    account_id = seed_account(api.engine, "anna@example.pl")
    link = _issue(api.engine, account_id, secrets.ACTIVATION_LINK)
    token = api.token("portal")
    assert _post(api, token, "/v1/activate", {"token": link, "password": "anna@example.pl"}) == (
        400,
        {"error": "weak_password", "reason": "the password must not be the login"},
    )
    assert _post(api, token, "/v1/activate", {"token": link, "password": NEW_PASSWORD}) == (
        200,
        {"account_id": account_id},
    )
    assert account_row(api.engine, account_id)["status"] == "active"
    assert _post(api, token, "/v1/activate", {"token": link, "password": NEW_PASSWORD}) == (
        400,
        {"error": "invalid_token"},
    )
    assert _post(api, token, "/v1/activate", {"token": "garbage", "password": NEW_PASSWORD})[1]["error"] == (
        "invalid_request"  # not shaped like a token: the documented pattern refuses it
    )
    forged = link.split(".")[0] + "." + "A" * 43
    assert _post(api, token, "/v1/activate", {"token": forged, "password": NEW_PASSWORD}) == (
        400,
        {"error": "invalid_token"},
    )
    other = seed_account(api.engine, "ewa@example.pl")
    stale = _issue(api.engine, other, secrets.ACTIVATION_LINK, expired=True)
    assert _post(api, token, "/v1/activate", {"token": stale, "password": NEW_PASSWORD}) == (400, {"error": "expired"})


def _mails(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(outbox.c.recipient, outbox.c.kind).order_by(outbox.c.id))]


def test_password_reset_is_always_202_and_queues_mail_only_for_a_live_account(api: RunningApi) -> None:
    """Known and unknown logins both get 202 {status: accepted}; only the known one gets a reset mail, and its
    link (as delivery would mint it) sets a new password through /v1/password-reset/confirm."""
    account_id = _active(api.engine)
    token = api.token("portal")
    assert _post(api, token, "/v1/password-reset", {"login": "nikt@example.pl"}) == (202, {"status": "accepted"})
    assert _post(api, token, "/v1/password-reset", {"login": "jan@example.pl"}) == (202, {"status": "accepted"})
    deadline = time.monotonic() + 10
    while not _mails(api.engine):
        assert time.monotonic() < deadline, "no reset mail queued"
        time.sleep(0.05)
    time.sleep(0.2)
    assert _mails(api.engine) == [("jan@example.pl", "password_reset")]
    link = _issue(api.engine, account_id, secrets.RESET_LINK)
    assert _post(api, token, "/v1/password-reset/confirm", {"token": link, "password": NEW_PASSWORD}) == (
        200,
        {"account_id": account_id},
    )
    assert _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": NEW_PASSWORD})[0] == 200


def test_customer_calls_need_a_valid_portal_token(api: RunningApi) -> None:
    """No token, an unknown one and an expired one are 401 invalid_token; a staff-only token is 403
    insufficient_scope; a malformed body is 422 invalid_request naming the field."""
    _active(api.engine)
    body = {"login": "jan@example.pl", "password": PASSWORD}
    with api.client() as http:
        bare = http.post("/v1/login", json=body)
    assert (bare.status_code, bare.json(), bare.headers["www-authenticate"]) == (
        401,
        {"error": "invalid_token"},
        'Bearer error="invalid_token"',
    )
    assert _post(api, "not-a-token", "/v1/login", body) == (401, {"error": "invalid_token"})
    staff = api.token("staff")
    status, answer = _post(api, staff, "/v1/login", body)
    assert (status, answer["error"]) == (403, "insufficient_scope")
    portal = api.token("portal")
    status, answer = _post(api, portal, "/v1/login", {"login": "jan@example.pl"})
    assert (status, answer["error"], answer["detail"][0]["loc"]) == (422, "invalid_request", ["body", "password"])
    with api.engine.begin() as conn:
        conn.execute(api_tokens.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    assert _post(api, portal, "/v1/login", body) == (401, {"error": "invalid_token"})


def test_no_password_or_token_reaches_the_logs(api: RunningApi) -> None:
    """Passwords, link tokens and bearer tokens never appear in what the server logs."""
    logged = io.StringIO()
    configure_logging(LoggingConfig(format="json", level="debug"), stream=logged)
    try:
        _active(api.engine)
        token = api.token("portal")
        link = _issue(api.engine, seed_account(api.engine, "anna@example.pl"), secrets.ACTIVATION_LINK)
        _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": PASSWORD})
        _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": "zle-haslo-123"})
        _post(api, token, "/v1/activate", {"token": link, "password": NEW_PASSWORD})
    finally:
        configure_logging()
    text = logged.getvalue()
    assert text.count('"api_request"') >= 4 and '"password_set"' in text
    for secret in (PASSWORD, "zle-haslo-123", link, link.split(".")[1], NEW_PASSWORD, token):
        assert secret not in text
