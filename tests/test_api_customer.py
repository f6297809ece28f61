"""The customer-facing calls of the portal API (scope `portal`) against a real uvicorn on SQLite and PostgreSQL:
every verdict of `integrator.portal` as its HTTP answer, the enumeration checks (body, status and time of an
unknown login against a wrong password), tokens and scopes, and no secret in answers or logs."""

from __future__ import annotations

import io
import json
import statistics
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from support.api_server import RunningApi, api_config, real_argon2, running_api
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
        {"error": "weak_password", "rule": "too_short", "reason": "the password must have at least 8 characters"},
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
        {"error": "weak_password", "rule": "same_as_login", "reason": "the password must not be the login"},
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


def _refused_rule(answer: tuple[int, dict[str, object]], password: str) -> object:
    """The `rule` of a 400 weak_password answer, having checked the body never repeats the password."""
    status, body = answer
    assert (status, body["error"], set(body)) == (400, "weak_password", {"error", "rule", "reason"}), answer
    assert password.strip() not in json.dumps(body, ensure_ascii=False)
    return body["rule"]


def test_activation_refuses_each_password_rule_by_name_and_never_cuts(api: RunningApi) -> None:
    """/v1/activate: 7 characters too_short, 129 too_long, a listed password in capitals common, each 400 with the
    rule and without the password, the link still unused; a 128-character password is set whole (its first 127
    characters do not log in), and 8 characters typed decomposed count as 8."""
    account_id = seed_account(api.engine, "anna@example.pl")
    link = _issue(api.engine, account_id, secrets.ACTIVATION_LINK)
    token = api.token("portal")
    for password, rule in [("Kot-Łód", "too_short"), ("Ab3$" * 32 + "x", "too_long"), ("PASSWORD123", "common")]:
        assert _refused_rule(_post(api, token, "/v1/activate", {"token": link, "password": password}), password) == rule
    assert account_row(api.engine, account_id)["status"] == "pending_activation"
    longest = "Ab3$" * 32
    assert _post(api, token, "/v1/activate", {"token": link, "password": longest}) == (200, {"account_id": account_id})
    assert _post(api, token, "/v1/login", {"login": "anna@example.pl", "password": longest})[0] == 200
    assert _post(api, token, "/v1/login", {"login": "anna@example.pl", "password": longest[:-1]})[0] == 401
    other = seed_account(api.engine, "ewa@example.pl")
    decomposed = "kot-Lo\u0301dz\u0301"  # "kot-Lódź" with the accents as combining marks: 10 code points, 8 after NFC
    reset = _issue(api.engine, other, secrets.ACTIVATION_LINK)
    assert _post(api, token, "/v1/activate", {"token": reset, "password": decomposed}) == (200, {"account_id": other})


def test_password_change_refuses_a_common_or_short_password_and_keeps_the_old_one(api: RunningApi) -> None:
    """/v1/password with the right old password but a listed new one is 400 rule common (or too_short), and the old
    password still logs in; the first change after a temporary password is held to the same rules."""
    _active(api.engine)
    token = api.token("portal")
    for new, rule in [("iloveyou", "common"), ("qwertyuiop1", "common"), ("Hasło-1", "too_short")]:
        answer = _post(api, token, "/v1/password", {"login": "jan@example.pl", "old": PASSWORD, "new": new})
        assert _refused_rule(answer, new) == rule
    assert _post(api, token, "/v1/login", {"login": "jan@example.pl", "password": PASSWORD})[0] == 200
    pending = seed_account(api.engine, "anna@example.pl")
    temporary = _issue(api.engine, pending, secrets.TEMPORARY_PASSWORD)
    answer = _post(api, token, "/v1/password", {"login": "anna@example.pl", "old": temporary, "new": "Password1"})
    assert _refused_rule(answer, "Password1") == "common"
    assert account_row(api.engine, pending)["status"] == "pending_activation"


def test_a_configured_minimum_length_is_what_the_api_asks_for(
    tmp_path: Path, api_store_url: str, api_engine: Engine
) -> None:
    """With [accounts] min_password_length = 12 an 11-character password is too_short (the reason says 12), and
    12 characters pass."""
    base = api_config(tmp_path, api_store_url)
    config = base.model_copy(update={"accounts": base.accounts.model_copy(update={"min_password_length": 12})})
    with running_api(config, api_engine) as api:
        account_id = seed_account(api.engine, "anna@example.pl")
        link = _issue(api.engine, account_id, secrets.ACTIVATION_LINK)
        token = api.token("portal")
        status, body = _post(api, token, "/v1/activate", {"token": link, "password": "kot-Łódź-12"})
        assert (status, body["rule"], body["reason"]) == (
            400,
            "too_short",
            "the password must have at least 12 characters",
        )
        assert _post(api, token, "/v1/activate", {"token": link, "password": "kot-Łódź-123"})[0] == 200


def test_the_openapi_document_names_the_password_rules(api: RunningApi) -> None:
    """/openapi.json gives the error body's `rule` as an enum of the five rules, and the new password its limits."""
    with api.client() as http:
        document = http.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert set(schemas["Rule"]["enum"]) == {"too_short", "too_long", "common", "same_as_login", "same_as_old"}
    assert "128" in schemas["ActivateIn"]["properties"]["password"]["description"]
    assert "weak_password" in document["paths"]["/v1/password"]["post"]["responses"]["400"]["description"]


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
