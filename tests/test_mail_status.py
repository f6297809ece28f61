"""`integrator mail status [--json]`: pending by kind, sent today (UTC day), failed, the caps in force and when the
queue will be empty at their rate, run as the installed command."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.mailstore import queue, seed_account

from integrator.cli.mail import MAIL_STATUSES
from integrator.clock import utcnow
from integrator.mail import outbox as outbox_module
from integrator.mail.caps import SendCaps
from integrator.mail.status import empty_after
from integrator.store.db import open_store
from integrator.store.schema import mail_sends, outbox

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def _config(tmp_path: Path, caps: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nurl = "sqlite:///store.db"\n[mail]\n{caps}\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def store(tmp_path: Path) -> Engine:
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def _status(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INTEGRATOR, "mail", "status", *extra, "--config", str(config)], capture_output=True, text=True, timeout=60
    )


def _seed(store: Engine, now: datetime) -> None:
    """25 pending (20 activations, 3 resets, 2 login changes), 4 sent today, 1 sent yesterday, 2 failed, and 10
    send slots taken an hour ago."""
    for n in range(25):
        kind = "activation" if n < 20 else "password_reset" if n < 23 else "login_changed"
        queue(store, seed_account(store, f"p{n}@example.pl"), kind)
    done = [queue(store, seed_account(store, f"s{n}@example.pl")) for n in range(7)]
    midnight = datetime(now.year, now.month, now.day)
    with store.begin() as conn:
        times = [midnight + timedelta(seconds=1)] * 4 + [midnight - timedelta(seconds=1)]
        for mail_id, sent_at in zip(done[:5], times, strict=True):
            conn.execute(outbox.update().where(outbox.c.id == mail_id).values(status="sent", sent_at=sent_at))
        conn.execute(outbox.update().where(outbox.c.id.in_(done[5:])).values(status="failed", attempts=5))
        hour_ago = now - timedelta(hours=1)
        conn.execute(
            mail_sends.insert(), [{"mail_id": 1000 + n, "sent_at": hour_ago - timedelta(seconds=n)} for n in range(10)]
        )


def test_status_json_counts_and_the_day_cap_eta(tmp_path: Path, store: Engine) -> None:
    """With max_per_day = 10 used up an hour ago and 25 pending, the queue empties two days after the cap frees:
    10 go when the oldest slot leaves the window, 10 a day later, the last 5 a day after that."""
    now = utcnow()
    _seed(store, now)
    done = _status(_config(tmp_path, "max_per_day = 10"), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["pending"] == {"total": 25, "by_kind": {"activation": 20, "login_changed": 2, "password_reset": 3}}
    assert (status["sent_today"], status["failed"]) == (4, 2)
    assert status["today_utc"] == datetime.fromisoformat(status["now"]).date().isoformat()
    assert status["caps"] == {"max_per_minute": 0, "max_per_day": 10, "sent_last_minute": 0, "sent_last_24h": 10,
                              "rate": "10/day"}  # fmt: skip
    oldest = now - timedelta(hours=1, seconds=9)
    assert status["held_by"] == "max_per_day"
    held_until = datetime.fromisoformat(status["held_until"])
    assert held_until == oldest + timedelta(hours=24)
    assert datetime.fromisoformat(status["empty_at"]) == held_until + timedelta(days=2)


def test_status_without_a_cap_says_so(tmp_path: Path, store: Engine) -> None:
    """No cap: no ETA in the JSON (null) and "no cap" in the human lines, which also name the UTC day."""
    _seed(store, utcnow())
    config = _config(tmp_path, 'backend = "file"')
    status = json.loads(_status(config, "--json").stdout)
    assert (status["caps"]["rate"], status["held_by"], status["empty_at"]) == ("no cap", None, None)
    human = _status(config)
    assert human.returncode == 0, human.stderr
    assert "pending:      25 (activation 20, login_changed 2, password_reset 3)" in human.stdout
    assert "sent today:   4 (UTC day " in human.stdout and "no cap" in human.stdout


def test_status_with_a_minute_cap_gives_the_paced_eta(tmp_path: Path, store: Engine) -> None:
    """max_per_minute = 10 and 25 pending, nothing sent in the last minute: 10 now, 10 a minute later, 5 after
    another, so about two minutes."""
    _seed(store, utcnow())
    status = json.loads(_status(_config(tmp_path, "max_per_minute = 10"), "--json").stdout)
    assert status["held_by"] is None
    eta = datetime.fromisoformat(status["empty_at"]) - datetime.fromisoformat(status["now"])
    assert eta == timedelta(minutes=2)


def test_empty_after_at_the_caps_rate() -> None:
    """The estimate: none without a cap, minute pacing, whole days under a day cap, both caps combined."""
    assert empty_after(100, SendCaps(), 0, 0) is None
    assert empty_after(0, SendCaps(per_minute=30), 30, 0) == timedelta(0)
    assert empty_after(30, SendCaps(per_minute=30), 0, 0) == timedelta(0)
    assert empty_after(31, SendCaps(per_minute=30), 0, 0) == timedelta(minutes=1)
    assert empty_after(31, SendCaps(per_minute=30), 30, 0) == timedelta(minutes=2)
    assert empty_after(10_000, SendCaps(per_minute=30, per_day=10_000), 0, 0) == timedelta(minutes=333)
    assert empty_after(650_000, SendCaps(per_minute=30, per_day=10_000), 0, 0) == timedelta(days=64, minutes=333)
    assert empty_after(2_001, SendCaps(per_day=2_000), 0, 0) == timedelta(days=1)


def test_cli_keeps_its_own_copy_of_the_mail_statuses() -> None:
    """`mail list --status` offers exactly the outbox's statuses (the CLI's copy spares --help the database)."""
    assert MAIL_STATUSES == outbox_module.MAIL_STATUSES


@pytest.mark.parametrize("args", [["mail", "--help"], ["mail", "status", "--help"], ["mail", "deliver", "--help"]])
def test_mail_help_imports_no_database_or_mail_library(args: list[str]) -> None:
    """`integrator mail --help` and its commands' help answer without loading the store or the mail stack."""
    from test_fast_start import HEAVY, imported

    done, packages = imported(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert packages & HEAVY == set(), f"integrator {' '.join(args)} imported {sorted(packages & HEAVY)}"
    assert "max_per_minute" in done.stdout or "status" in done.stdout
