"""SIGKILL at every crash point of a sync and of a mail delivery, then a rerun: the state equals a clean run's,
with no duplicate identity, no lost change or mail, and no mail sent twice but in the one documented window
(killed after the server accepted a mail and before its delivery was recorded).

The kill points are counted, not guessed: a clean run reports how often each point is reached, and the
first, second, middle and last occurrence of every per-batch point are tried.
"""

from __future__ import annotations

import collections
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.crash import count_checkpoints, integrator_json, killed
from support.erp import SqliteErp, make_config
from support.smtp import SmtpServer

from integrator.config import Config
from integrator.store.db import open_store
from integrator.store.schema import account_events, account_secrets, accounts, outbox, quarantine, runs
from integrator.sync import run_sync
from tests.conftest import require_odbc_driver

pytestmark = pytest.mark.slow

BATCH = 25
"""Accounts per apply transaction in these scenarios: a few hundred customers make a dozen batches."""


def state_of(url: str) -> dict[str, Any]:
    """What a crash and a rerun must leave exactly as a clean run does (identity ids are random, so not them),
    after checking what must hold in any state: one live identity per customer and per login, and exactly
    one activation mail to the current login of every live pending account."""
    engine = open_store(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(accounts)).mappings().all()
        mails = conn.execute(sa.select(outbox.c.account_id, outbox.c.kind, outbox.c.recipient)).all()
        events = conn.execute(sa.select(account_events.c.erp_id, account_events.c.kind)).all()
        quarantined = conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar_one()
    engine.dispose()
    live = [r for r in rows if r["status"] != "removed"]
    assert len({r["erp_id"] for r in live}) == len(live), "two live identities for one customer"
    assert len({r["login"] for r in live}) == len(live), "one login on two live accounts"
    by_id = {r["id"]: r for r in rows}
    per_account = collections.Counter((m.account_id, m.recipient) for m in mails if m.kind == "activation")
    for r in live:
        if r["status"] == "pending_activation":
            assert per_account[(r["id"], r["login"])] == 1, ("activation mails", r["erp_id"], r["login"])
    assert quarantined == 0
    mail_counts = collections.Counter((by_id[m.account_id]["erp_id"], m.kind, m.recipient) for m in mails)
    return {
        "live": sorted((r["erp_id"], r["login"], r["status"], r["name"], r["phone"]) for r in live),
        "closed": sorted(collections.Counter(r["erp_id"] for r in rows if r["status"] == "removed").items()),
        "mails": sorted(mail_counts.items()),
        "events": sorted(collections.Counter((e.erp_id, e.kind) for e in events).items()),
    }


def fresh_copy(source: Path, target: Path) -> None:
    """Copy a SQLite store file (its WAL checkpointed into it by the engine's close)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copy(source, target)


def seed(erp: SqliteErp) -> None:
    """300 customers, every fourth without the tag, two pairs sharing an e-mail (one pair only by its case)."""
    for erp_id in range(1, 301):
        erp.add(erp_id, tags="b2b" if erp_id % 4 else "hurt")
    erp.set(11, email="klient10@example.pl")
    erp.set(14, email=" KLIENT13@Example.PL")


def retire(erp: SqliteErp) -> None:
    """Customers 281–290 lose the tag, so that the next state can bring them back as re-adds."""
    for erp_id in range(281, 291):
        erp.set(erp_id, tags="")


def change(erp: SqliteErp) -> None:
    """The next ERP state, touching every kind of action: removals, updates, login changes (a swap among
    them), creates, re-adds."""
    for erp_id in range(1, 21):
        erp.set(erp_id, tags="")
    for erp_id in range(21, 41):
        erp.set(erp_id, phone=f"600{erp_id}")
    for erp_id in range(41, 50):
        erp.set(erp_id, email=f"nowy{erp_id}@example.pl")
    erp.set(50, email="klient51@example.pl")
    erp.set(51, email="klient50@example.pl")
    for erp_id in range(4, 120, 4):
        erp.set(erp_id, tags="b2b")
    for erp_id in range(281, 291):
        erp.set(erp_id, tags="b2b")
    for erp_id in range(301, 341):
        erp.add(erp_id)


@dataclass
class Scenario:
    """An ERP state, the store a sync starts from, and what a clean sync of it ends with."""

    name: str
    erp: SqliteErp
    baseline: Path
    expected: dict[str, Any]
    counts: dict[str, int]

    def config(self, folder: Path, **sections: Any) -> Config:
        """A config on a private copy of the baseline store in `folder`."""
        fresh_copy(self.baseline, folder / "store.db")
        return make_config(self.erp, f"sqlite:///{folder / 'store.db'}", folder, store={"batch_size": BATCH},
                           **sections)  # fmt: skip

    def occurrence(self, point: str, which: str) -> int:
        last = self.counts[point]
        n = {"first": 1, "second": 2, "middle": last // 2 + 1, "last": last}[which]
        assert 1 <= n <= last, (point, which, last)
        return n


PER_BATCH = ("apply.before_commit", "apply.after_commit")
ONCE = ("sync.before_apply", "sync.before_finish")


@pytest.fixture(scope="module", params=["initial", "change"])
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """`initial`: an empty store and 300 customers. `change`: a store holding the accounts of an earlier state
    (with closed ones) and an ERP that moved on. Clean runs give the expected state and the kill points."""
    require_odbc_driver("SQLite3")
    folder = tmp_path_factory.mktemp(request.param)
    erp = SqliteErp(folder / "erp.db")
    seed(erp)
    baseline = folder / "baseline.db"
    open_store(f"sqlite:///{baseline}").dispose()
    if request.param == "change":
        config = make_config(erp, f"sqlite:///{baseline}", folder)
        engine = open_store(config.store.url)
        assert run_sync(config, engine=engine).status == "ok"
        retire(erp)
        assert run_sync(config, engine=engine).removed == 8  # 284 and 288 never had the tag
        engine.dispose()
        change(erp)
    counts, states = {}, []
    for point in (*PER_BATCH, *ONCE):
        clean = folder / f"clean-{point}"
        clean.mkdir()
        fresh_copy(baseline, clean / "store.db")
        config = make_config(erp, f"sqlite:///{clean / 'store.db'}", clean, store={"batch_size": BATCH})
        done, counts[point] = count_checkpoints(config, "sync", "--json", name=point)
        assert done.returncode == 0, done.stderr[-3000:]
        states.append(state_of(config.store.url))
    assert all(s == states[0] for s in states), "two clean runs of one state disagree"
    assert counts["apply.before_commit"] >= 8 and counts["sync.before_apply"] == 1
    return Scenario(request.param, erp, baseline, states[0], counts)


KILLS = [
    ("sync.before_apply", "first"),
    *((point, which) for point in PER_BATCH for which in ("first", "second", "middle", "last")),
    ("sync.before_finish", "first"),
]


@pytest.mark.parametrize(("point", "which"), KILLS)
def test_sync_killed_at_a_crash_point_converges_on_rerun(
    scenario: Scenario, point: str, which: str, tmp_path: Path
) -> None:
    """A sync SIGKILLed at a crash point and run again ends exactly where a clean run ends, and the run after
    that has nothing left to do."""
    config = scenario.config(tmp_path)
    killed(config, "sync", "--json", crash_at=f"{point}:{scenario.occurrence(point, which)}")
    rerun = integrator_json(config, "sync")
    assert rerun["status"] == "ok"
    assert state_of(config.store.url) == scenario.expected
    engine = open_store(config.store.url)
    again = run_sync(config, engine=engine)
    assert (again.status, again.created, again.updated, again.removed, again.mails_queued) == ("ok", 0, 0, 0, 0)
    with engine.connect() as conn:
        statuses = list(conn.execute(sa.select(runs.c.status).order_by(runs.c.id)).scalars())
    engine.dispose()
    assert statuses[-2:] == ["ok", "ok"]  # the rerun and the no-op after the killed run
    assert state_of(config.store.url) == scenario.expected


def test_sync_killed_while_reading_converges_on_rerun(tmp_path: Path, sqlite_odbc: str) -> None:
    """A sync SIGKILLed after reading 20,000 records (`sync.read`) has applied nothing, and a rerun ends where a
    clean run ends."""
    erp = SqliteErp(tmp_path / "erp.db")
    rows = [(n, f"Firma {n}", f"klient{n}@example.pl", "b2b" if n % 10 else "") for n in range(1, 22_223)]
    with sqlite3.connect(erp.path) as db:
        db.executemany("INSERT INTO customers (erp_id, name, email, tags) VALUES (?, ?, ?, ?)", rows)
    clean = tmp_path / "clean"
    clean.mkdir()
    clean_config = make_config(erp, f"sqlite:///{clean / 'store.db'}", clean, store={"batch_size": 5000})
    assert integrator_json(clean_config, "sync")["created"] == 20_000
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, store={"batch_size": 5000})
    killed(config, "sync", crash_at="sync.read:1")
    assert state_of(config.store.url)["live"] == []
    assert integrator_json(config, "sync")["created"] == 20_000
    assert state_of(config.store.url) == state_of(clean_config.store.url)


# -- mail ------------------------------------------------------------------------------------------------------

MESSAGE_ID = re.compile(rb"Message-ID: <outbox-(\d+)\.")


def sent_per_mail(raws: list[bytes]) -> collections.Counter[int]:
    """How many messages went out for each outbox id (read from the Message-ID)."""
    ids = []
    for raw in raws:
        match = MESSAGE_ID.search(raw)
        assert match, raw[:500]
        ids.append(int(match.group(1)))
    return collections.Counter(ids)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_world(tmp_path: Path, sqlite_odbc: str, smtp: SmtpServer) -> tuple[Config, list[int]]:
    """A store with 12 new accounts' activation mails queued, one of them superseded by a login change (so it
    is cancelled, never sent), and an SMTP server; returns the config and the ids of the mails to send."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 13):
        erp.add(erp_id)
    mail = {"backend": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "timeout": 10}}
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, mail=mail)
    engine = open_store(config.store.url)
    run_sync(config, engine=engine)
    erp.set(5, email="nowy5@example.pl")
    run_sync(config, engine=engine)
    with engine.connect() as conn:
        queued = list(conn.execute(sa.select(outbox.c.id, outbox.c.recipient).order_by(outbox.c.id)))
    engine.dispose()
    assert len(queued) == 13
    return config, [mail_id for mail_id, recipient in queued if recipient != "klient5@example.pl"]


@pytest.mark.parametrize("point", ["mail.after_secret", "mail.after_send", "mail.after_record"])
@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_mail_delivery_killed_sends_each_mail_once_but_in_the_documented_window(
    mail_world: tuple[Config, list[int]], smtp: SmtpServer, point: str, which: str
) -> None:
    """`integrator mail deliver` SIGKILLed at a mail crash point and run again sends every mail, each exactly
    once, except that a kill between the server's acceptance and the record sends that one mail twice; every
    account then holds exactly one valid secret, the newest."""
    config, to_send = mail_world
    n = {"first": 1, "middle": len(to_send) // 2, "last": len(to_send)}[which]
    killed(config, "mail", "deliver", crash_at=f"{point}:{n}")
    report = integrator_json(config, "mail", "deliver")
    assert (report["pending_left"], report["failed"]) == (0, 0)
    sent = sent_per_mail([message.raw for message in smtp.handler.received])
    doubled = [mail_id for mail_id, times in sent.items() if times > 1]
    assert sorted(sent) == to_send, "a mail lost, or a cancelled one sent"
    assert doubled == ([to_send[n - 1]] if point == "mail.after_send" else [])
    assert all(times <= 2 for times in sent.values())
    engine = open_store(config.store.url)
    with engine.connect() as conn:
        statuses = collections.Counter(conn.execute(sa.select(outbox.c.status)).scalars())
        secrets = conn.execute(sa.select(account_secrets.c.account_id, account_secrets.c.revoked_at)).all()
    engine.dispose()
    assert statuses == {"sent": len(to_send), "cancelled": 1}
    valid = collections.Counter(account for account, revoked in secrets if revoked is None)
    assert len(valid) == 12 and set(valid.values()) == {1}, "an account with no valid secret, or two"
    assert len(secrets) == 12 + (0 if point == "mail.after_record" else 1)  # the killed mail's secret, revoked


@pytest.mark.parametrize("crash_at", ["apply.after_commit:2", "mail.after_secret:3", "mail.after_send:3"])
def test_sync_with_delivery_killed_converges_on_rerun(tmp_path: Path, sqlite_odbc: str, crash_at: str) -> None:
    """A sync that delivers its own mail (`deliver_after_sync`), SIGKILLed while applying or while delivering,
    sends every activation on the rerun, each once but for the one documented window."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 61):
        erp.add(erp_id)
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, store={"batch_size": BATCH},
                         mail={"deliver_after_sync": True})  # fmt: skip
    killed(config, "sync", crash_at=crash_at)
    rerun = integrator_json(config, "sync")
    assert rerun["status"] == "ok" and rerun["mail"]["pending_left"] == 0
    sent = sent_per_mail([eml.read_bytes() for eml in (tmp_path / "mail").glob("*.eml")])
    assert len(sent) == 60 and sum(sent.values()) == 60 + (1 if "after_send" in crash_at else 0)
    live = state_of(config.store.url)["live"]
    assert len(live) == 60
