"""SIGKILL at every crash point of a sync and of a mail delivery, then a rerun: the state equals a clean run's,
with no duplicate identity, no lost mail, and no mail sent twice but in the one documented window.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.erp import SqliteErp, make_config

from integrator.config import Config
from integrator.store.db import open_store
from integrator.store.schema import accounts, outbox

pytestmark = pytest.mark.slow

CHILD = """
import json, sys
from integrator.config import config_from_dict
from pathlib import Path
data, path, action = json.loads(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
config = config_from_dict(data, path)
if action == "sync":
    from integrator.sync import run_sync
    print(json.dumps({"status": run_sync(config, allow_mass_removal=True).status}))
else:
    from integrator.mail.delivery import deliver_pending
    from integrator.store.db import open_store
    print(json.dumps({"sent": deliver_pending(open_store(config.store.url), config).sent}))
"""


def _data(config: Config) -> dict[str, Any]:
    return json.loads(config.model_dump_json(exclude={"path"}))


def run_child(config: Config, action: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a sync or a mail delivery in a child process, optionally killed at a crash point."""
    env = {k: v for k, v in os.environ.items() if k != "INTEGRATOR_CRASH_AT"}
    if crash_at:
        env["INTEGRATOR_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(_data(config)), str(config.path), action],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def state_of(url: str) -> dict[str, Any]:
    """What must be the same after a crash and a rerun as after a clean run (ids are random, so not them)."""
    engine = open_store(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(accounts.c.id, accounts.c.erp_id, accounts.c.login, accounts.c.status)).all()
        mails = conn.execute(sa.select(outbox.c.account_id, outbox.c.kind)).all()
    engine.dispose()
    live = [r for r in rows if r.status != "removed"]
    per_erp = collections.Counter(r.erp_id for r in live)
    assert max(per_erp.values(), default=0) <= 1, "two live identities for one customer"
    by_id = {r.id: r.erp_id for r in rows}
    mail_counts = collections.Counter((by_id[m.account_id], m.kind) for m in mails)
    return {
        "live": sorted((r.erp_id, r.login, r.status) for r in live),
        "removed": sorted(collections.Counter(r.erp_id for r in rows if r.status == "removed").items()),
        "mails": sorted(mail_counts.items()),
    }


def seed(erp: SqliteErp) -> None:
    for erp_id in range(1, 301):
        erp.add(erp_id, tags="b2b" if erp_id % 4 else "hurt")


def change(erp: SqliteErp) -> None:
    """A second ERP state touching every kind of action: removals, updates, login changes, creates, re-adds."""
    for erp_id in range(1, 21):
        erp.set(erp_id, tags="")
    for erp_id in range(21, 41):
        erp.set(erp_id, phone=f"600{erp_id}")
    for erp_id in range(41, 51):
        erp.set(erp_id, email=f"nowy{erp_id}@example.pl")
    for erp_id in range(4, 120, 4):
        erp.set(erp_id, tags="b2b")
    for erp_id in range(301, 341):
        erp.add(erp_id)


@pytest.fixture
def scenario(tmp_path: Path, sqlite_odbc: str) -> dict[str, Any]:
    """A store after one clean sync of state A, the ERP already moved to state B, and B's clean outcome."""
    erp = SqliteErp(tmp_path / "erp.db")
    seed(erp)
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, store={"batch_size": 25})
    assert run_child(config, "sync").returncode == 0
    change(erp)
    shutil.copy(tmp_path / "store.db", tmp_path / "store-a.db")
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(tmp_path / "store.db", clean / "store.db")
    clean_config = make_config(erp, f"sqlite:///{clean / 'store.db'}", clean, store={"batch_size": 25})
    assert run_child(clean_config, "sync").returncode == 0
    return {"erp": erp, "config": config, "tmp": tmp_path, "expected": state_of(clean_config.store.url)}


CRASH_POINTS = [
    "sync.before_apply:1",
    *(f"apply.before_commit:{n}" for n in (1, 2, 3, 4, 5, 6, 7)),
    *(f"apply.after_commit:{n}" for n in (1, 2, 3, 4, 5, 6, 7)),
    "sync.before_finish:1",
]


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_sync_killed_anywhere_converges_on_rerun(scenario: dict[str, Any], crash_at: str) -> None:
    """Killed with SIGKILL at a crash point and run again, a sync ends where a clean run ends."""
    config, tmp = scenario["config"], scenario["tmp"]
    shutil.copy(tmp / "store-a.db", tmp / "store.db")
    for suffix in ("-wal", "-shm"):
        (tmp / f"store.db{suffix}").unlink(missing_ok=True)
    crashed = run_child(config, "sync", crash_at)
    assert crashed.returncode == -signal.SIGKILL, (crash_at, crashed.stdout, crashed.stderr[-2000:])
    rerun = run_child(config, "sync")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert state_of(config.store.url) == scenario["expected"]
    again = run_child(config, "sync")  # and the run after that has nothing left to do
    assert again.returncode == 0 and state_of(config.store.url) == scenario["expected"]


def _sent_per_mail(folder: Path) -> collections.Counter[int]:
    ids = []
    for eml in folder.glob("*.eml"):
        match = re.search(r"Message-ID: <outbox-(\d+)\.", eml.read_text(encoding="utf-8", errors="replace"))
        assert match, eml
        ids.append(int(match.group(1)))
    return collections.Counter(ids)


@pytest.mark.parametrize("crash_at", ["mail.after_secret:3", "mail.after_send:3", "mail.after_record:3"])
def test_mail_delivery_killed_sends_each_mail_once_but_in_the_documented_window(
    tmp_path: Path, sqlite_odbc: str, crash_at: str
) -> None:
    """After a kill and a rerun every queued mail went out; only a kill between send and record doubles one."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 11):
        erp.add(erp_id)
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    assert run_child(config, "sync").returncode == 0
    crashed = run_child(config, "deliver", crash_at)
    assert crashed.returncode == -signal.SIGKILL
    assert run_child(config, "deliver").returncode == 0
    sent = _sent_per_mail(tmp_path / "mail")
    engine = open_store(config.store.url)
    with engine.connect() as conn:
        statuses = collections.Counter(conn.execute(sa.select(outbox.c.status)).scalars())
    engine.dispose()
    assert statuses == {"sent": 10}
    assert sorted(sent) == list(range(1, 11))
    doubled = [mail_id for mail_id, count in sent.items() if count > 1]
    assert doubled == ([3] if crash_at.startswith("mail.after_send") else [])
