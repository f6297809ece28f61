"""The deletion guard and the empty-source guard: a run that would remove too much, or read nothing while accounts
are live, is refused whole (exit 4), lists what it refused and why, and applies nothing of its plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.crash import integrator, integrator_json
from support.erp import SqliteErp, make_config

from integrator.config import Config
from integrator.store.db import open_store
from integrator.store.schema import account_events, accounts, outbox, quarantine, run_actions, runs
from integrator.sync import SyncResult, run_sync

NO_SHARE = {"min_live_for_percent": 10**6}
"""[safety] values that switch the share check off, to test the count alone."""


class Store:
    """A store with helpers to sync it and to photograph everything a run could write."""

    def __init__(self, erp: SqliteErp, url: str, tmp: Path, **safety: Any) -> None:
        self.erp, self.url, self.tmp = erp, url, tmp
        self.engine = open_store(url)
        self.config = self.configure(**safety)

    def configure(self, **safety: Any) -> Config:
        self.config = make_config(self.erp, self.url, self.tmp, safety=safety)
        return self.config

    def sync(self, **kwargs: Any) -> SyncResult:
        return run_sync(self.config, engine=self.engine, **kwargs)

    def live(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(accounts.c.erp_id).where(accounts.c.status != "removed")).scalars())

    def photo(self) -> dict[str, Any]:
        """Every row of the tables a run applies to (accounts, their events, the outbox, the quarantine)."""
        with self.engine.connect() as conn:
            return {
                table.name: sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
                for table in (accounts, account_events, outbox, quarantine)
            }


@pytest.fixture
def erp(tmp_path: Path, sqlite_odbc: str) -> SqliteErp:
    return SqliteErp(tmp_path / "erp.db")


def seeded(erp: SqliteErp, url: str, tmp: Path, count: int, **safety: Any) -> Store:
    """A store holding `count` live accounts (customers 1..count) after one clean sync."""
    for erp_id in range(1, count + 1):
        erp.add(erp_id)
    store = Store(erp, url, tmp, **safety)
    assert store.sync(allow_mass_removal=True).created == count
    return store


def untag(erp: SqliteErp, *erp_ids: int) -> None:
    for erp_id in erp_ids:
        erp.set(erp_id, tags="vip")


@pytest.mark.parametrize(("removals", "status"), [(3, "ok"), (4, "refused")])
def test_count_limit_allows_max_removals_and_refuses_one_more(
    erp: SqliteErp, tmp_path: Path, removals: int, status: str
) -> None:
    """`max_removals = 3` lets a run remove 3 accounts and refuses a run that would remove 4."""
    store = seeded(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, 10, max_removals=3, **NO_SHARE)
    untag(store.erp, *range(1, removals + 1))
    result = store.sync()
    assert (result.status, result.exit_code) == (status, 4 if status == "refused" else 0)
    if status == "refused":
        assert "max_removals = 3" in (result.message or "")
        assert {r["erp_id"] for r in result.refused} == {"1", "2", "3", "4"}
        assert len(store.live()) == 10
    else:
        assert result.removed == 3 and len(store.live()) == 7


@pytest.mark.parametrize(("removals", "status"), [(4, "ok"), (5, "refused")])
def test_share_limit_refuses_above_the_percent_once_enough_accounts_are_live(
    erp: SqliteErp, tmp_path: Path, removals: int, status: str
) -> None:
    """With 20 live and `max_removal_percent = 20`, removing 4 (20 %) passes and removing 5 (25 %) is refused."""
    store = seeded(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, 20,
                   max_removal_percent=20, min_live_for_percent=20)  # fmt: skip
    untag(store.erp, *range(1, removals + 1))
    result = store.sync()
    assert result.status == status
    if status == "refused":
        assert "5 of 20 live accounts (25.0 %)" in (result.message or "") and len(result.refused) == 5
        assert len(store.live()) == 20
    else:
        assert result.removed == 4


def test_share_is_not_checked_below_min_live_for_percent(erp: SqliteErp, tmp_path: Path) -> None:
    """With 19 live accounts and `min_live_for_percent = 20`, removing 10 of them (53 %) is allowed."""
    store = seeded(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, 19,
                   max_removal_percent=20, min_live_for_percent=20)  # fmt: skip
    untag(store.erp, *range(1, 11))
    result = store.sync()
    assert (result.status, result.removed) == ("ok", 10)
    assert store.live() == {str(n) for n in range(11, 20)}


def test_allow_mass_removal_applies_what_the_guard_refused(erp: SqliteErp, tmp_path: Path) -> None:
    """A plan refused by both limits is applied in full with `allow_mass_removal`, with each removal's reason."""
    store = seeded(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, 30, max_removals=5)
    untag(store.erp, *range(1, 16))
    assert store.sync().status == "refused"
    result = store.sync(allow_mass_removal=True)
    assert (result.status, result.removed) == ("ok", 15)
    with store.engine.connect() as conn:
        closed = sa.select(accounts.c.removed_reason).where(accounts.c.status == "removed")
        reasons = set(conn.execute(closed).scalars())
    assert reasons == {"missing_tag"}


def test_empty_source_is_refused_even_for_a_small_base(erp: SqliteErp, tmp_path: Path) -> None:
    """A source returning zero records while 2 accounts are live is refused though the limits would allow it."""
    store = seeded(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, 2)
    erp.clear()
    result = store.sync()
    assert (result.status, result.exit_code, result.records) == ("refused", 4, 0)
    assert "no records while 2 accounts are live" in (result.message or "")
    assert {r["erp_id"] for r in result.refused} == {"1", "2"}
    assert store.live() == {"1", "2"}
    assert store.sync(allow_mass_removal=True).removed == 2  # a deliberate wipe stays possible


def test_empty_source_with_no_live_accounts_is_a_plain_run(erp: SqliteErp, tmp_path: Path) -> None:
    """An empty source on an empty store (a new install) is no danger: the run is ok and does nothing."""
    store = Store(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    result = store.sync()
    assert (result.status, result.records, result.created) == ("ok", 0, 0)


def test_refused_run_applies_nothing_not_even_its_creates_and_updates(
    erp: SqliteErp, store_url: str, tmp_path: Path
) -> None:
    """A refused plan with creates, re-adds, updates, login changes and removals leaves every table as it was,
    and its summary counts nothing as created, updated, removed or queued."""
    store = seeded(erp, store_url, tmp_path, 10, max_removals=2, **NO_SHARE)
    untag(erp, 10)
    assert store.sync().removed == 1
    untag(erp, 1, 2, 3)  # 3 removals: one too many
    erp.set(4, phone="600100200")  # an update
    erp.set(5, email="nowy5@example.pl")  # a login change (and its mail)
    erp.set(10, tags="b2b")  # a re-add
    erp.add(11)  # a create
    erp.set(6, active="moze")  # a garbled row: would be quarantined
    before = store.photo()
    result = store.sync()
    assert (result.status, result.exit_code) == ("refused", 4)
    assert (result.created, result.readded, result.updated, result.removed, result.mails_queued) == (0, 0, 0, 0, 0)
    assert store.photo() == before
    with store.engine.connect() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.id == result.run_id)).mappings().one()
    assert (run["status"], run["created"], run["updated"], run["removed"], run["mails_queued"]) == (
        "refused", 0, 0, 0, 0,
    )  # fmt: skip
    applied = store.sync(allow_mass_removal=True)  # the same plan, now allowed, does all of it
    assert (applied.created, applied.readded, applied.updated, applied.removed) == (2, 1, 2, 3)


def test_cli_exits_4_and_lists_the_refused_removals_in_json_and_in_history(erp: SqliteErp, tmp_path: Path) -> None:
    """Through the executable: `sync --json` exits 4 naming every refused removal (who, login, why), and
    `history show RUN_ID --json` keeps them as actions "refused" with the reason."""
    store = seeded(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, 6, max_removals=2)
    untag(erp, 1)
    erp.delete(2)
    erp.set(3, active=0)
    erp.add(7)
    summary = integrator_json(store.config, "sync", code=4)
    assert summary["status"] == "refused" and "max_removals = 2" in summary["message"]
    assert (summary["created"], summary["removed"], summary["mails_queued"]) == (0, 0, 0)
    refused = {r["erp_id"]: r for r in summary["refused"]}
    assert {k: (r["login"], r["reasons"]) for k, r in refused.items()} == {
        "1": ("klient1@example.pl", "missing_tag"),
        "2": ("klient2@example.pl", "not_in_source"),
        "3": ("klient3@example.pl", "inactive"),
    }
    history = integrator_json(store.config, "history", "show", str(summary["run_id"]))
    assert history["status"] == "refused" and "max_removals" in history["error"]
    actions = {a["erp_id"]: a for a in history["actions"]}
    assert {a["action"] for a in actions.values()} == {"refused"} and set(actions) == {"1", "2", "3"}
    assert "not_in_source" in actions["2"]["reason"] and "deletion guard" in actions["2"]["reason"]
    assert actions["3"]["account_id"] == refused["3"]["account_id"]
    human = integrator(store.config, "sync")
    assert human.returncode == 4 and "refused" in human.stdout + human.stderr
    assert store.live() == {str(n) for n in range(1, 7)}
    allowed = integrator_json(store.config, "sync", "--allow-mass-removal")
    assert (allowed["status"], allowed["removed"], allowed["created"]) == ("ok", 3, 1)


def test_dry_run_of_a_refused_plan_reports_the_refusal_and_writes_nothing(erp: SqliteErp, tmp_path: Path) -> None:
    """`sync --dry-run --json` on a plan the guard refuses exits 4 with the refused removals and records no run."""
    store = seeded(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, 3)
    erp.clear()
    before = store.photo()
    summary = integrator_json(store.config, "sync", "--dry-run", code=4)
    assert summary["status"] == "refused" and summary["run_id"] is None
    assert {r["erp_id"] for r in summary["refused"]} == {"1", "2", "3"}
    assert store.photo() == before
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 1  # the seeding run only
        assert conn.execute(sa.select(sa.func.count()).select_from(run_actions)).scalar() == 0
