"""Sending caps ([mail] max_per_minute, max_per_day) against a real SMTP server on loopback: honoured within a run,
across runs and across processes, held mail untried, first activations first."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from support.mailstore import FAST_RETRY, mail_config, mail_row, queue, rows, seed_account, smtp_settings
from support.smtp import SmtpServer

from integrator.clock import utcnow
from integrator.config import Config
from integrator.mail.caps import SendCaps, claim_slots
from integrator.mail.delivery import DeliveryReport, deliver_pending
from integrator.store.db import open_store
from integrator.store.schema import account_secrets, mail_sends, outbox

pytest_plugins = ["support.mail_fixtures"]

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


class FakeClock:
    """A clock whose sleep only moves its time on, so minutes of pacing take no time."""

    def __init__(self, start: datetime) -> None:
        self.at = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.at += timedelta(seconds=seconds)


def _config(tmp_path: Path, url: str, port: int, **mail: object) -> Config:
    return mail_config(tmp_path, url, smtp=smtp_settings(port), **mail)


def _deliver(engine: Engine, config: Config, clock: FakeClock, **kwargs: object) -> DeliveryReport:
    return deliver_pending(engine, config, retry=FAST_RETRY, clock=clock, **kwargs)  # type: ignore[arg-type]


def _slot_times(engine: Engine) -> list[datetime]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(mail_sends.c.sent_at).order_by(mail_sends.c.sent_at)).scalars())


def _max_in_window(times: list[datetime], window: timedelta) -> int:
    """The most slots any sliding window of this length holds."""
    return max((sum(1 for t in times if start <= t < start + window) for start in times), default=0)


def test_minute_cap_paces_one_run_and_every_mail_goes_out(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Seven mails under max_per_minute = 3 go out 3, 3, 1 a minute apart in one paced run; no 60 s holds more
    than 3, and the SMTP session is reopened after each wait."""
    config = _config(tmp_path, sqlite_url, smtp.port, max_per_minute=3)
    ids = [queue(engine, seed_account(engine, f"k{n}@example.pl")) for n in range(7)]
    clock = FakeClock(utcnow())
    report = _deliver(engine, config, clock, pace=True)
    assert (report.sent, report.pending_left, report.held_by) == (7, 0, None)
    assert len(smtp.handler.received) == 7 and smtp.handler.sessions == 3
    assert [r.rcpt_tos[0] for r in smtp.handler.received] == [f"k{n}@example.pl" for n in range(7)]
    assert len(clock.sleeps) == 2 and all(59 <= s <= 60 for s in clock.sleeps)
    times = _slot_times(engine)
    assert len(times) == 7 and _max_in_window(times, timedelta(seconds=60)) == 3
    assert [mail_row(engine, i)["attempts"] for i in ids] == [1] * 7


def test_without_pacing_the_cap_stops_the_run_and_held_mail_is_untried(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Under max_per_minute = 2 an unpaced run sends 2 of 5 and stops; the other 3 stay pending with no attempt, no
    error, no backoff and no secret minted; the report names the cap and when it frees a slot."""
    config = _config(tmp_path, sqlite_url, smtp.port, max_per_minute=2)
    accounts_ = [seed_account(engine, f"k{n}@example.pl") for n in range(5)]
    ids = [queue(engine, a) for a in accounts_]
    clock = FakeClock(utcnow())
    report = _deliver(engine, config, clock)
    assert (report.sent, report.pending_left, report.held_by) == (2, 3, "max_per_minute")
    assert report.held_until == clock.at + timedelta(seconds=60)
    assert len(smtp.handler.received) == 2
    for mail_id in ids[2:]:
        row = mail_row(engine, mail_id)
        assert (row["status"], row["attempts"], row["last_error"], row["next_attempt_at"]) == ("pending", 0, None, None)
    assert {s["account_id"] for s in rows(engine, account_secrets)} == set(accounts_[:2])
    clock.sleep(30)  # half a minute later the window is still full
    assert _deliver(engine, config, clock).sent == 0
    clock.sleep(31)
    assert _deliver(engine, config, clock).sent == 2


def test_day_cap_holds_across_runs_until_the_window_slides(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """max_per_day = 3: a paced run sends 3 of 5 and stops (the day cap is never waited out); an hour later nothing
    goes; 24 hours after the first sends the other 2 go."""
    config = _config(tmp_path, sqlite_url, smtp.port, max_per_day=3, max_per_minute=100)
    for n in range(5):
        queue(engine, seed_account(engine, f"k{n}@example.pl"))
    start = utcnow()
    clock = FakeClock(start)
    first = _deliver(engine, config, clock, pace=True)
    assert (first.sent, first.pending_left, first.held_by, first.held_until) == (
        3, 2, "max_per_day", start + timedelta(hours=24),
    )  # fmt: skip
    assert clock.sleeps == []
    clock.sleep(3600)
    assert _deliver(engine, config, clock, pace=True).sent == 0
    clock.at = start + timedelta(hours=24, seconds=1)
    last = _deliver(engine, config, clock, pace=True)
    assert (last.sent, last.pending_left) == (2, 0) and len(smtp.handler.received) == 5


def test_first_activations_go_before_resets_then_resends_and_reminders(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Queued oldest first as resend, reminder, reset, removal notice, first activation, the mails go out as
    first activation, reset, resend, reminder, removal notice; under max_per_minute = 1 the first activation goes."""
    config = _config(tmp_path, sqlite_url, smtp.port, send_removal_notice=True)
    resend = queue(engine, seed_account(engine, "resend@example.pl"))
    reminder = queue(engine, seed_account(engine, "reminder@example.pl"))
    with engine.begin() as conn:
        conn.execute(outbox.update().where(outbox.c.id.in_((resend, reminder))).values(actor="ops:Ewa"))
    queue(engine, seed_account(engine, "reset@example.pl", status="active"), "password_reset")
    queue(engine, seed_account(engine, "gone@example.pl"), "account_removed")
    queue(engine, seed_account(engine, "first@example.pl"))
    capped = _config(tmp_path, sqlite_url, smtp.port, max_per_minute=1)
    assert _deliver(engine, capped, FakeClock(utcnow())).sent == 1
    assert [r.rcpt_tos[0] for r in smtp.handler.received] == ["first@example.pl"]
    _deliver(engine, config, FakeClock(utcnow()))
    order = [r.rcpt_tos[0].split("@")[0] for r in smtp.handler.received]
    assert order == ["first", "reset", "resend", "reminder", "gone"]


def test_slot_is_given_back_when_the_relay_is_down(tmp_path: Path, engine: Engine, sqlite_url: str) -> None:
    """With the server down no slot stays taken, so the cap's whole allowance is there once it is up."""
    server = SmtpServer()  # not started yet
    config = _config(tmp_path, sqlite_url, server.port, max_per_minute=2)
    for n in range(3):
        queue(engine, seed_account(engine, f"k{n}@example.pl"))
    clock = FakeClock(utcnow())
    down = _deliver(engine, config, clock)
    assert (down.sent, down.backend_error is not None, _slot_times(engine)) == (0, True, [])
    server.start()
    try:
        assert _deliver(engine, config, clock).sent == 2
        assert len(server.handler.received) == 2
    finally:
        server.stop()


def test_refused_mail_keeps_its_slot(tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str) -> None:
    """A 550 counts against the cap (the relay counted it too): under max_per_minute = 2 a refusal and a send use
    the minute."""
    config = _config(tmp_path, sqlite_url, smtp.port, max_per_minute=2)
    for n in range(3):
        queue(engine, seed_account(engine, f"k{n}@example.pl"))
    smtp.handler.refuse("k0@example.pl")
    report = _deliver(engine, config, FakeClock(utcnow()))
    assert (report.failed, report.sent, report.pending_left, report.held_by) == (1, 1, 1, "max_per_minute")


@pytest.mark.parametrize("url_fixture", ["pg_url", "mariadb_url"])
def test_gate_lets_parallel_claims_take_exactly_the_cap(url_fixture: str, request: pytest.FixtureRequest) -> None:
    """Eight threads claiming slots at once on PostgreSQL or MariaDB (no delivery lock around them) get exactly
    the cap between them."""
    engine = open_store(request.getfixturevalue(url_fixture))
    caps, now, granted = SendCaps(per_minute=10), utcnow(), []
    barrier = threading.Barrier(8)

    def claim(worker: int) -> None:
        barrier.wait()
        for n in range(4):
            with engine.begin() as conn:
                got, _ = claim_slots(conn, caps, [worker * 100 + n * 2, worker * 100 + n * 2 + 1], now)
            granted.extend(got)

    threads = [threading.Thread(target=claim, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 10 and len(_slot_times(engine)) == 10
    engine.dispose()


def _cli_config(tmp_path: Path, url: str, port: int, cap: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nurl = "{url}"\n[lock]\nwait_seconds = 60\n'
        f'[mail]\nbackend = "smtp"\n{cap}\n'
        f'[mail.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 5\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_deliveries_at_once_stay_under_the_cap_together(
    backend: str, tmp_path: Path, smtp: SmtpServer, request: pytest.FixtureRequest
) -> None:
    """Two `integrator mail deliver --no-wait` processes started together on one store, 12 mails queued,
    max_per_minute = 5: 5 go out between them, both exit 3, and the other 7 are pending and untried."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = open_store(url)
    ids = [queue(engine, seed_account(engine, f"k{n}@example.pl")) for n in range(12)]
    config = _cli_config(tmp_path, url, smtp.port, "max_per_minute = 5")
    command = [INTEGRATOR, "mail", "deliver", "--no-wait", "--json", "--config", str(config)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [3, 3], results
    assert all("max_per_minute" in out for out, _ in results)
    assert len(smtp.handler.received) == 5
    statuses = [mail_row(engine, i) for i in ids]
    assert sum(r["status"] == "sent" for r in statuses) == 5
    assert all(r["attempts"] == 0 for r in statuses if r["status"] == "pending")
    engine.dispose()


def test_a_bad_cap_is_a_config_error_naming_file_and_key(tmp_path: Path) -> None:
    """`max_per_day = -5` makes `integrator mail status` exit 2 naming the config file and [mail.max_per_day]."""
    config = _cli_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", 25, "max_per_day = -5")
    done = subprocess.run([INTEGRATOR, "mail", "status", "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 2
    assert (
        str(config) in done.stderr
        and "[mail.max_per_day]" in done.stderr
        and "greater than or equal to 0" in (done.stderr)
    )
