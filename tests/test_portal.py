"""The portal-facing credential functions and the ops actions on credentials, against a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from support.mailstore import account_row, events, mail_config, queue, rows, seed_account

from integrator.mail.secrets import hash_password
from integrator.portal import (
    RESET_REQUESTS_PER_HOUR,
    AccountNotFound,
    CredentialsRefused,
    Outcome,
    change_password,
    login,
    request_password_reset,
    resend_activation,
    resend_all_pending,
    reset_password,
)
from integrator.store.schema import accounts, outbox

pytest_plugins = ["support.mail_fixtures"]

PASSWORD = "Dobre-Hasło-123"


@pytest.fixture
def active(engine: Engine) -> str:
    """An activated account with a known password."""
    return seed_account(engine, "jan@example.pl", status="active", password_hash=hash_password(PASSWORD))


def _mails(engine: Engine) -> list[dict[str, object]]:
    return sorted(rows(engine, outbox), key=lambda r: r["id"])  # type: ignore[arg-type, return-value]


def test_login_with_the_right_password_is_ok_and_recorded(engine: Engine, active: str) -> None:
    """A correct login is case- and whitespace-insensitive and stamps `last_login_at`."""
    result = login(engine, "  Jan@Example.PL", PASSWORD)
    assert (result.outcome, result.account_id, result.ok) == (Outcome.OK, active, True)
    assert account_row(engine, active)["last_login_at"] is not None


def test_wrong_password_and_unknown_login_get_the_same_answer(engine: Engine, active: str) -> None:
    """Nothing tells an unknown login from a wrong password."""
    assert login(engine, "jan@example.pl", "zle-haslo-123") == login(engine, "nikt@example.pl", PASSWORD)
    assert login(engine, "jan@example.pl", "zle-haslo-123").outcome is Outcome.WRONG_CREDENTIALS
    assert login(engine, "", "").outcome is Outcome.WRONG_CREDENTIALS


def test_blocked_account_reports_its_reason_only_to_the_right_password(engine: Engine, active: str) -> None:
    """A blocked account answers `blocked` with the reason, but only after the password was proven."""
    with engine.begin() as conn:
        conn.execute(accounts.update().values(blocked=True, blocked_reason="Zaległe płatności"))
    result = login(engine, "jan@example.pl", PASSWORD)
    assert (result.outcome, result.reason) == (Outcome.BLOCKED, "Zaległe płatności")
    assert login(engine, "jan@example.pl", "zle-haslo-123").reason is None
    assert change_password(engine, "jan@example.pl", PASSWORD, "Nowe-Hasło-456").outcome is Outcome.BLOCKED


def test_must_change_flag_is_reported_after_a_good_login(engine: Engine, active: str) -> None:
    """`must_change_password` set on the account makes a correct login answer `must_change_password`."""
    with engine.begin() as conn:
        conn.execute(accounts.update().values(must_change_password=True))
    assert login(engine, "jan@example.pl", PASSWORD).outcome is Outcome.MUST_CHANGE_PASSWORD
    assert change_password(engine, "jan@example.pl", PASSWORD, "Nowe-Hasło-456").ok
    assert login(engine, "jan@example.pl", "Nowe-Hasło-456").outcome is Outcome.OK
    assert not account_row(engine, active)["must_change_password"]


def test_removed_account_cannot_log_in(engine: Engine) -> None:
    """A closed identity never logs in, even with its old password."""
    seed_account(engine, "jan@example.pl", status="removed", password_hash=hash_password(PASSWORD))
    assert login(engine, "jan@example.pl", PASSWORD).outcome is Outcome.WRONG_CREDENTIALS


@pytest.mark.parametrize(
    ("new", "rule", "why"),
    [
        ("krotkie", "too_short", "at least 8"),
        ("x" * 129, "too_long", "at most 128"),
        ("Password123", "common", "common passwords"),
        ("jan@example.pl", "same_as_login", "not be the login"),
        (PASSWORD, "same_as_old", "differ"),
    ],
)
def test_weak_new_passwords_are_refused_with_a_rule_and_reason(
    engine: Engine, active: str, new: str, rule: str, why: str
) -> None:
    """A too short, too long, common, login-equal or unchanged password is refused and the old one keeps working."""
    result = change_password(engine, "jan@example.pl", PASSWORD, new)
    assert (result.outcome, result.rule) == (Outcome.WEAK_PASSWORD, rule) and why in (result.reason or "")
    assert new not in (result.reason or "")
    assert login(engine, "jan@example.pl", PASSWORD).ok


def test_eight_characters_are_enough_unless_the_config_asks_for_more(engine: Engine, active: str) -> None:
    """The floor is 8 (was 10); `min_length` (from [accounts] min_password_length) raises it for the change."""
    raised = change_password(engine, "jan@example.pl", PASSWORD, "kot-Łódź", min_length=10)
    assert (raised.outcome, raised.rule) == (Outcome.WEAK_PASSWORD, "too_short")
    assert change_password(engine, "jan@example.pl", PASSWORD, "kot-Łódź").ok
    assert login(engine, "jan@example.pl", "kot-Łódź").ok


def test_password_change_is_recorded_without_the_password(engine: Engine, active: str) -> None:
    """The account's history says the password changed, and not what to."""
    assert change_password(engine, "jan@example.pl", PASSWORD, "Nowe-Hasło-456").ok
    [event] = events(engine, active)
    assert (event["kind"], event["actor"], json.loads(event["changes"])) == (
        "password_changed",
        "portal",
        {"via": "password"},
    )
    assert "Nowe-Hasło-456" not in repr(event)


def test_self_service_reset_answers_the_same_and_queues_only_for_real_accounts(
    engine: Engine, active: str, tmp_path: Path, sqlite_url: str
) -> None:
    """Unknown, removed or blocked e-mails queue nothing; a live account gets one password_reset mail."""
    config = mail_config(tmp_path, sqlite_url)
    seed_account(engine, "gone@example.pl", status="removed")
    seed_account(engine, "blok@example.pl", status="active", blocked=True, blocked_reason="x")
    answers = {
        request_password_reset(engine, config, e) for e in ("nikt@example.pl", "gone@example.pl", "blok@example.pl")
    }
    assert answers == {None} and _mails(engine) == []
    assert request_password_reset(engine, config, " JAN@example.pl ") is None
    [mail] = _mails(engine)
    assert (mail["kind"], mail["recipient"], mail["actor"], mail["status"]) == (
        "password_reset",
        "jan@example.pl",
        "self-service",
        "pending",
    )


def test_self_service_reset_is_rate_limited_per_account(
    engine: Engine, active: str, tmp_path: Path, sqlite_url: str
) -> None:
    """At most RESET_REQUESTS_PER_HOUR requests per account and hour queue a mail; the rest are ignored."""
    config = mail_config(tmp_path, sqlite_url)
    for _ in range(RESET_REQUESTS_PER_HOUR + 3):
        request_password_reset(engine, config, "jan@example.pl")
    assert len(_mails(engine)) == RESET_REQUESTS_PER_HOUR


def test_self_service_reset_for_a_pending_account_resends_the_activation(
    engine: Engine, tmp_path: Path, sqlite_url: str
) -> None:
    """A customer who lost the activation mail and asks for a reset gets the activation again."""
    seed_account(engine, "nowy@example.pl")
    request_password_reset(engine, mail_config(tmp_path, sqlite_url), "nowy@example.pl")
    assert [m["kind"] for m in _mails(engine)] == ["activation"]


def test_ops_reset_records_the_actor_and_queues_one_mail(engine: Engine, active: str) -> None:
    """`reset_password` on behalf of a sales rep queues a reset mail and names the rep in the history."""
    mail_id = reset_password(engine, "jan@example.pl", actor="rep:Łukasz Wąsowski")
    again = reset_password(engine, "jan@example.pl", actor="rep:Łukasz Wąsowski")
    assert again == mail_id and len(_mails(engine)) == 1  # a pending reset is reused, not doubled
    history = events(engine, active)
    assert [(e["kind"], e["actor"]) for e in history] == [("password_reset_requested", "rep:Łukasz Wąsowski")] * 2
    assert json.loads(history[0]["changes"]) == {"mail_id": mail_id}


def test_ops_reset_is_refused_for_pending_and_unknown_accounts(engine: Engine) -> None:
    """A pending account is pointed to resend-activation; an unknown login is not found."""
    seed_account(engine, "nowy@example.pl")
    with pytest.raises(CredentialsRefused, match="resend-activation"):
        reset_password(engine, "nowy@example.pl", actor="ops")
    with pytest.raises(AccountNotFound):
        reset_password(engine, "nikt@example.pl", actor="ops")


def test_resend_activation_while_pending_and_refused_once_active(engine: Engine, active: str) -> None:
    """Resending works while pending (one pending mail, made due now); an active account is sent to reset."""
    pending = seed_account(engine, "nowy@example.pl")
    queued = queue(engine, pending)
    with engine.begin() as conn:
        conn.execute(outbox.update().values(next_attempt_at=sa.func.current_timestamp()))
    assert resend_activation(engine, "nowy@example.pl", actor="ops:anna") == queued
    assert _mails(engine)[0]["next_attempt_at"] is None
    assert [(e["kind"], e["actor"]) for e in events(engine, pending)] == [("activation_resent", "ops:anna")]
    with pytest.raises(CredentialsRefused, match="reset-password jan@example.pl"):
        resend_activation(engine, "jan@example.pl", actor="ops:anna")


def test_resend_all_pending_invites_live_pending_unblocked_accounts(engine: Engine, active: str) -> None:
    """Bulk invite: every live pending unblocked account gets exactly one pending activation."""
    invited = {seed_account(engine, f"p{n}@example.pl") for n in range(3)}
    seed_account(engine, "blok@example.pl", blocked=True, blocked_reason="x")
    seed_account(engine, "gone@example.pl", status="removed")
    queue(engine, next(iter(invited)))  # one already has a pending activation
    assert resend_all_pending(engine, actor="ops:anna") == 3
    mails = _mails(engine)
    assert {m["account_id"] for m in mails} == invited and len(mails) == 3
    assert all(m["kind"] == "activation" for m in mails)


def test_a_login_to_a_pending_account_spends_one_verification_like_an_unknown_login(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pending account has no password hash yet; a wrong login to it still costs one argon2 verification, so its
    answer cannot be told from an unknown login's by its time."""
    seed_account(engine, "pending@example.pl")
    import integrator.mail.secrets as secrets_module

    calls: list[str | None] = []
    real = secrets_module.verify_password
    monkeypatch.setattr(secrets_module, "verify_password", lambda h, p: calls.append(h) or real(h, p))
    assert login(engine, "pending@example.pl", PASSWORD).outcome is Outcome.WRONG_CREDENTIALS
    pending = [h for h in calls if h]
    calls.clear()
    assert login(engine, "nobody@example.pl", PASSWORD).outcome is Outcome.WRONG_CREDENTIALS
    assert len(pending) == len([h for h in calls if h]) == 1
