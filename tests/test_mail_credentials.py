"""Secrets delivered by real mail work exactly as long as they should, and never appear anywhere in plaintext."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from sqlalchemy.engine import Engine
from support.mailstore import (
    FAST_RETRY,
    account_row,
    events,
    expire_secrets,
    mail_config,
    password_in,
    queue,
    rows,
    seed_account,
    smtp_settings,
    token_in,
)
from support.smtp import SmtpServer

from integrator.config import Config
from integrator.mail.delivery import deliver_pending
from integrator.portal import Outcome, activate, change_password, login, resend_activation
from integrator.store.schema import account_events, account_secrets, outbox

pytest_plugins = ["support.mail_fixtures"]


def _config(tmp_path: Path, sqlite_url: str, smtp: SmtpServer, mode: str = "link") -> Config:
    return mail_config(tmp_path, sqlite_url, accounts_={"activation": mode}, smtp=smtp_settings(smtp.port))


def _deliver(engine: Engine, config: Config) -> None:
    report = deliver_pending(engine, config, retry=FAST_RETRY)
    assert report.pending_left == 0 and report.failed == 0, report


def test_activation_link_works_once(tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str) -> None:
    """The mailed link sets the password and activates the account; the same link then fails."""
    account = seed_account(engine, "jan@example.pl")
    queue(engine, account)
    _deliver(engine, _config(tmp_path, sqlite_url, smtp))
    token = token_in(smtp.handler.received[0].text)
    assert activate(engine, token, "Moje-Nowe-Hasło-1").outcome is Outcome.OK
    row = account_row(engine, account)
    assert row["status"] == "active" and row["activated_at"] and row["password_hash"].startswith("$argon2id$")
    assert login(engine, "JAN@example.pl ", "Moje-Nowe-Hasło-1").outcome is Outcome.OK
    assert activate(engine, token, "Inne-Hasło-12345").outcome is Outcome.INVALID_TOKEN
    assert login(engine, "jan@example.pl", "Inne-Hasło-12345").outcome is Outcome.WRONG_CREDENTIALS
    assert [e["kind"] for e in events(engine, account)] == ["activated"]


def test_activation_link_fails_after_expiry(tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str) -> None:
    """An expired link answers `expired` and sets nothing."""
    account = seed_account(engine, "jan@example.pl")
    queue(engine, account)
    _deliver(engine, _config(tmp_path, sqlite_url, smtp))
    expire_secrets(engine, account)
    result = activate(engine, token_in(smtp.handler.received[0].text), "Moje-Nowe-Hasło-1")
    assert result.outcome is Outcome.EXPIRED
    assert account_row(engine, account)["status"] == "pending_activation"


def test_link_is_valid_for_the_configured_hours(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """The stored expiry is `activation_valid_hours` after minting, and the mail states it."""
    account = seed_account(engine, "jan@example.pl")
    queue(engine, account)
    _deliver(engine, _config(tmp_path, sqlite_url, smtp))
    [secret] = rows(engine, account_secrets)
    assert abs((secret["expires_at"] - secret["created_at"]).total_seconds() - 48 * 3600) < 5
    assert secret["kind"] == "activation_link" and secret["revoked_at"] is None
    assert "ważny do " in smtp.handler.received[0].text


def test_only_the_newest_link_works_after_a_resend(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Once a newer activation is mailed, the older link is revoked and only the newer one activates."""
    config = _config(tmp_path, sqlite_url, smtp)
    account = seed_account(engine, "jan@example.pl")
    queue(engine, account)
    _deliver(engine, config)
    resend_activation(engine, "jan@example.pl", actor="ops:anna")
    _deliver(engine, config)
    older, newer = (token_in(r.text) for r in smtp.handler.to("jan@example.pl"))
    assert older != newer
    assert activate(engine, older, "Moje-Nowe-Hasło-1").outcome is Outcome.INVALID_TOKEN
    assert activate(engine, newer, "Moje-Nowe-Hasło-1").outcome is Outcome.OK


def test_a_token_that_was_tampered_with_is_invalid(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Changing a character of the token, or pointing it at another secret id, makes it worthless."""
    queue(engine, seed_account(engine, "jan@example.pl"))
    _deliver(engine, _config(tmp_path, sqlite_url, smtp))
    token = token_in(smtp.handler.received[0].text)
    secret_id, random_part = token.split(".", 1)
    flipped = random_part[:-1] + ("A" if random_part[-1] != "A" else "B")
    for bad in (f"{secret_id}.{flipped}", f"{int(secret_id) + 1}.{random_part}", random_part, ""):
        assert activate(engine, bad, "Moje-Nowe-Hasło-1").outcome is Outcome.INVALID_TOKEN


def test_temporary_password_logs_in_once_and_must_be_changed(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Password mode: the mailed password logs in with must-change; changing it activates and retires it."""
    account = seed_account(engine, "jan@example.pl")
    queue(engine, account)
    _deliver(engine, _config(tmp_path, sqlite_url, smtp, mode="password"))
    temporary = password_in(smtp.handler.received[0].text)
    assert smtp.handler.received[0].message["Subject"] == "Dane logowania do platformy zamówień B2B"
    assert login(engine, "jan@example.pl", temporary).outcome is Outcome.MUST_CHANGE_PASSWORD
    assert login(engine, "jan@example.pl", temporary + "x").outcome is Outcome.WRONG_CREDENTIALS
    assert change_password(engine, "jan@example.pl", temporary, "Moje-Nowe-Hasło-1").outcome is Outcome.OK
    assert account_row(engine, account)["status"] == "active"
    assert login(engine, "jan@example.pl", "Moje-Nowe-Hasło-1").outcome is Outcome.OK
    assert login(engine, "jan@example.pl", temporary).outcome is Outcome.WRONG_CREDENTIALS
    assert change_password(engine, "jan@example.pl", temporary, "Jeszcze-Inne-1").outcome is Outcome.WRONG_CREDENTIALS


def test_temporary_password_fails_after_expiry(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """An expired temporary password answers `expired` for login and for a password change."""
    account = seed_account(engine, "jan@example.pl")
    queue(engine, account)
    _deliver(engine, _config(tmp_path, sqlite_url, smtp, mode="password"))
    temporary = password_in(smtp.handler.received[0].text)
    expire_secrets(engine, account)
    assert login(engine, "jan@example.pl", temporary).outcome is Outcome.EXPIRED
    assert change_password(engine, "jan@example.pl", temporary, "Moje-Nowe-Hasło-1").outcome is Outcome.EXPIRED


def test_older_temporary_password_fails_once_a_newer_one_is_mailed(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Only the newest temporary password logs in."""
    config = _config(tmp_path, sqlite_url, smtp, mode="password")
    queue(engine, seed_account(engine, "jan@example.pl"))
    _deliver(engine, config)
    resend_activation(engine, "jan@example.pl", actor="ops:anna")
    _deliver(engine, config)
    older, newer = (password_in(r.text) for r in smtp.handler.to("jan@example.pl"))
    assert login(engine, "jan@example.pl", older).outcome is Outcome.WRONG_CREDENTIALS
    assert login(engine, "jan@example.pl", newer).outcome is Outcome.MUST_CHANGE_PASSWORD


def test_a_secret_minted_for_a_mail_that_failed_is_revoked(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """When the server refuses the mail, the secret minted for it is revoked and the earlier one still works."""
    config = _config(tmp_path, sqlite_url, smtp)
    queue(engine, seed_account(engine, "jan@example.pl"))
    _deliver(engine, config)
    first = token_in(smtp.handler.received[0].text)
    resend_activation(engine, "jan@example.pl", actor="ops:anna")
    smtp.handler.refuse("jan@example.pl", "554 5.7.1 Rejected")
    deliver_pending(engine, config, retry=FAST_RETRY)
    secrets_ = sorted(rows(engine, account_secrets), key=lambda s: s["id"])
    assert secrets_[0]["revoked_at"] is None and secrets_[1]["revoked_at"] is not None
    assert activate(engine, first, "Moje-Nowe-Hasło-1").outcome is Outcome.OK


@pytest.mark.parametrize("mode", ["link", "password"])
def test_no_plaintext_secret_in_database_logs_or_outbox(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str, mode: str
) -> None:
    """After delivering and using secrets, neither the database file, the logs nor the outbox contain one."""
    config = _config(tmp_path, sqlite_url, smtp, mode=mode)
    for n in range(3):
        queue(engine, seed_account(engine, f"k{n}@example.pl"))
    smtp.handler.refuse("k2@example.pl")  # a failure path too: its error must not carry the secret either
    with structlog.testing.capture_logs() as logs:
        deliver_pending(engine, config, retry=FAST_RETRY)
        texts = [r.text for r in smtp.handler.received]
        plaintexts = [token_in(t).split(".", 1)[1] if mode == "link" else password_in(t) for t in texts]
        if mode == "link":
            assert activate(engine, token_in(texts[0]), "Moje-Nowe-Hasło-1").ok
        else:
            assert change_password(engine, "k0@example.pl", plaintexts[0], "Moje-Nowe-Hasło-1").ok
        login(engine, "k1@example.pl", plaintexts[1])
    assert len(plaintexts) == 2
    engine.dispose()  # flush SQLite's WAL into the main file, then read every file the store uses
    store_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    log_text = repr(logs)
    table_text = repr(rows(engine, outbox)) + repr(rows(engine, account_events)) + repr(rows(engine, account_secrets))
    for secret in [*plaintexts, "Moje-Nowe-Hasło-1"]:
        assert secret.encode() not in store_bytes
        assert secret not in log_text and secret not in table_text
    assert any(e["event"] == "mail_sent" for e in logs) and any(e["event"] == "mail_failed" for e in logs)
