"""`integrator mail deliver|list|retry`, `reset-password` and `resend-activation` as ops run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from support.mailstore import events, mail_row, queue, seed_account
from support.smtp import SmtpServer

from integrator.cli import main
from integrator.mail.secrets import hash_password
from integrator.store.db import open_store

pytest_plugins = ["support.mail_fixtures"]


def _write_config(tmp_path: Path, mail: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nurl = "sqlite:///store.db"\n'
        '[accounts]\nportal_url = "https://b2b.example.pl"\n' + mail,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def file_config(tmp_path: Path) -> Path:
    """A config delivering into tmp/mail as .eml files."""
    return _write_config(tmp_path, '[mail]\nbackend = "file"\n[mail.file]\ndirectory = "mail"\n')


@pytest.fixture
def store(tmp_path: Path) -> Engine:
    """The store the config points at."""
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)], catch_exceptions=False)


def test_mail_deliver_json_exits_0_when_nothing_is_left(file_config: Path, store: Engine, tmp_path: Path) -> None:
    """`mail deliver --json` prints the counts and exits 0 once every mail went out."""
    for n in range(2):
        queue(store, seed_account(store, f"k{n}@example.pl"))
    result = _run(file_config, "mail", "deliver", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["sent"], report["failed"], report["pending_left"]) == (2, 0, 0)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 2


def test_mail_deliver_exits_3_while_mail_is_left_pending(tmp_path: Path, store: Engine) -> None:
    """With the SMTP server down, `mail deliver` says why and exits 3: the mail is still pending."""
    server = SmtpServer()  # never started
    config = _write_config(
        tmp_path,
        f'[mail]\nbackend = "smtp"\n[mail.smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n',
    )
    queue(store, seed_account(store, "k@example.pl"))
    result = _run(config, "mail", "deliver")
    assert result.exit_code == 3
    assert "pending 1" in result.stdout and "mail backend unavailable" in result.stderr


def test_failed_mail_is_listed_and_retried(tmp_path: Path, store: Engine, smtp: SmtpServer) -> None:
    """A refused mail shows in `mail list --failed`; `mail retry ID` makes it pending and it then goes out."""
    config = _write_config(
        tmp_path, f'[mail]\nbackend = "smtp"\n[mail.smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
    )
    mail_id = queue(store, seed_account(store, "k@example.pl"))
    smtp.handler.refuse("k@example.pl")
    assert _run(config, "mail", "deliver").exit_code == 0  # nothing left pending: it failed
    listed = json.loads(_run(config, "mail", "list", "--failed", "--json").stdout)
    assert [(m["id"], m["status"]) for m in listed] == [(mail_id, "failed")] and "550" in listed[0]["last_error"]
    assert "failed" in _run(config, "mail", "list").stdout  # the human table (wrapped to the terminal)
    smtp.handler.clear()
    retried = _run(config, "mail", "retry", str(mail_id))
    assert retried.exit_code == 0 and "pending again" in retried.stdout
    assert _run(config, "mail", "deliver").exit_code == 0
    assert mail_row(store, mail_id)["status"] == "sent"
    again = _run(config, "mail", "retry", str(mail_id))
    assert again.exit_code == 2 and "never sent again" in again.stderr
    assert len(smtp.handler.received) == 1


def test_reset_password_queues_delivers_and_records_the_actor(file_config: Path, store: Engine, tmp_path: Path) -> None:
    """`reset-password LOGIN --actor` mails the reset right away and names the actor in the history."""
    account = seed_account(store, "jan@example.pl", status="active", password_hash=hash_password("Stare-Haslo-1"))
    result = _run(file_config, "reset-password", "jan@example.pl", "--actor", "rep:Łukasz")
    assert result.exit_code == 0, result.output
    assert "password reset queued" in result.stdout and "sent 1" in result.stdout
    [eml] = (tmp_path / "mail").glob("*-password_reset.eml")
    assert b"reset-password?token=" in eml.read_bytes()
    assert [(e["kind"], e["actor"]) for e in events(store, account)] == [("password_reset_requested", "rep:Łukasz")]


def test_resend_activation_refuses_an_active_account_with_a_pointer(file_config: Path, store: Engine) -> None:
    """An activated account is refused (exit 2) and told to use reset-password; an unknown login too."""
    seed_account(store, "jan@example.pl", status="active")
    result = _run(file_config, "resend-activation", "jan@example.pl")
    assert result.exit_code == 2 and "integrator reset-password jan@example.pl" in result.stderr
    assert _run(file_config, "resend-activation", "nikt@example.pl").exit_code == 2
    assert _run(file_config, "resend-activation").exit_code == 2  # neither LOGIN nor --all-pending


def test_resend_activation_all_pending_queues_without_delivering(
    file_config: Path, store: Engine, tmp_path: Path
) -> None:
    """`--all-pending --no-deliver` queues one activation per pending account and sends nothing yet."""
    for n in range(3):
        seed_account(store, f"p{n}@example.pl")
    result = _run(file_config, "resend-activation", "--all-pending", "--no-deliver", "--actor", "ops:anna")
    assert result.exit_code == 0 and "queued for 3 pending account(s)" in result.stdout
    assert not (tmp_path / "mail").exists()
    listed = json.loads(_run(file_config, "mail", "list", "--status", "pending", "--json").stdout)
    assert [(m["kind"], m["actor"]) for m in listed] == [("activation", "ops:anna")] * 3
