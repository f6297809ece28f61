"""The pinned contract, driven from outside as a script would: the `integrator` executable, its exit codes and
its `--json` shapes, on a config with only `[source]` (every other key at its default).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.erp import SqliteErp

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))
SYNC_KEYS = {
    "run_id",
    "status",
    "created",
    "updated",
    "removed",
    "unchanged",
    "rejected",
    "quarantined",
    "mails_queued",
}
ACCOUNT_KEYS = {"id", "erp_id", "login", "status", "blocked", "name", "tax_id", "phone", "price_level", "discount"}


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INTEGRATOR, *args, "--config", str(config)], capture_output=True, text=True, timeout=120, check=False
    )


def run_json(config: Path, *args: str, code: int = 0) -> Any:
    done = run(config, *args, "--json")
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def setup(tmp_path: Path, sqlite_odbc: str) -> tuple[SqliteErp, Path]:
    erp = SqliteErp(tmp_path / "erp.db")
    config = tmp_path / "config.toml"
    source = erp.source()
    config.write_text(
        f'[source]\nkind = "odbc"\nconnection_string = "{source["connection_string"]}"\nquery = "{source["query"]}"\n'
    )
    return erp, config


def test_minimal_config_syncs_with_defaults_and_pinned_json(setup: tuple[SqliteErp, Path]) -> None:
    """With only [source], sync uses the default store and file mail next to the config and prints the keys."""
    erp, config = setup
    erp.add(1, name="Hurtownia Łódź")
    erp.add(2, tags="")
    summary = run_json(config, "sync")
    assert set(summary) >= SYNC_KEYS
    assert (summary["status"], summary["created"], summary["rejected"], summary["mails_queued"]) == ("ok", 1, 1, 1)
    assert isinstance(summary["run_id"], int)
    assert (config.parent / "integrator.db").exists()
    assert len(list((config.parent / "mail").glob("*.eml"))) == 1  # deliver_after_sync defaults to true
    again = run_json(config, "sync")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1)


def test_accounts_list_json_is_an_array_with_the_pinned_fields(setup: tuple[SqliteErp, Path]) -> None:
    """`accounts list --json` prints accounts with id, erp_id, login, status, blocked (bool) and synced fields."""
    erp, config = setup
    erp.add(1, email=" Jan@Example.PL ", discount="12.5")
    run_json(config, "sync")
    [account] = run_json(config, "accounts", "list")
    assert set(account) >= ACCOUNT_KEYS
    assert (account["erp_id"], account["login"], account["status"], account["blocked"]) == (
        "1",
        "jan@example.pl",
        "pending_activation",
        False,
    )


def test_block_shows_in_accounts_and_survives_a_sync(setup: tuple[SqliteErp, Path]) -> None:
    """`block` marks the account blocked with its reason; a sync keeps it blocked; `unblock` lifts it."""
    erp, config = setup
    erp.add(1)
    run_json(config, "sync")
    done = run(config, "block", "klient1@example.pl", "--reason", "zaległe płatności")
    assert done.returncode == 0, done.stderr
    erp.set(1, phone="123")
    run_json(config, "sync")
    [account] = run_json(config, "accounts", "list")
    assert account["blocked"] is True and account["blocked_reason"] == "zaległe płatności" and account["phone"] == "123"
    assert run(config, "unblock", "klient1@example.pl").returncode == 0
    assert run_json(config, "accounts", "list")[0]["blocked"] is False


def test_exit_codes(setup: tuple[SqliteErp, Path]) -> None:
    """0 ok, 2 bad config, 3 quarantined, 4 refused by a guard, 1 failed source — as SPEC.md pins them."""
    erp, config = setup
    erp.add(1)
    erp.add(2)
    assert run(config, "sync").returncode == 0
    erp.set(2, active="moze")
    quarantined = run_json(config, "sync", code=3)
    assert (quarantined["status"], quarantined["quarantined"]) == ("quarantined", 1)
    erp.set(2, active=1)
    erp.clear()
    refused = run_json(config, "sync", code=4)
    assert refused["status"] == "refused" and {r["erp_id"] for r in refused["refused"]} == {"1", "2"}
    bad = config.parent / "bad.toml"
    bad.write_text(config.read_text() + "\n[safety]\nmax_removals = -1\n")
    done = run(bad, "sync")
    assert done.returncode == 2 and "[safety.max_removals]" in done.stderr and "bad.toml" in done.stderr
    not_run = run_json(bad, "sync", code=2)  # a script reading --json still gets one object, saying why
    assert set(not_run) >= SYNC_KEYS and (not_run["run_id"], not_run["status"]) == (None, "failed")
    assert "[safety.max_removals]" in not_run["message"] and not_run["created"] == 0
    broken = config.parent / "broken.toml"
    broken.write_text(config.read_text().replace("FROM customers", "FROM nothing_here"))
    failed = run_json(broken, "sync", code=1)
    assert failed["status"] == "failed" and "nothing_here" in failed["message"]


def test_history_and_explain_tell_what_happened(setup: tuple[SqliteErp, Path]) -> None:
    """`history`, `history show RUN_ID` and `explain ERP_ID` report runs, actions and rule verdicts."""
    erp, config = setup
    erp.add(1, email="wspolny@example.pl")
    erp.add(2, email="wspolny@example.pl")
    first = run_json(config, "sync")
    erp.set(1, tags="")
    run_json(config, "sync")
    runs = run_json(config, "history")
    assert [r["id"] for r in runs][:2] == [first["run_id"] + 1, first["run_id"]]
    shown = run_json(config, "history", "show", str(first["run_id"]))
    assert {(a["erp_id"], a["action"]) for a in shown["actions"]} == {("1", "create"), ("2", "reject")}
    assert any(a["reason"] == "duplicate_email" for a in shown["actions"])
    explained = run_json(config, "explain", "1")
    assert explained["eligible"] is False
    assert {r["rule"]: r["passed"] for r in explained["rules"]}["tag"] is False
    assert [i["status"] for i in explained["identities"]] == ["removed"]


def test_report_lists_every_customer_with_its_access(setup: tuple[SqliteErp, Path]) -> None:
    """`report --format json` has one row per ERP customer: eligible or why not, and the account status."""
    erp, config = setup
    erp.add(1)
    erp.add(2, tags="vip")
    erp.add(3, email="klient1@example.pl")
    run_json(config, "sync")
    done = run(config, "report", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {r["erp_id"]: r for r in json.loads(done.stdout)}
    assert rows["1"]["eligible"] and rows["1"]["account_status"] == "pending_activation"
    assert rows["2"]["reasons"] == "missing_tag" and rows["2"]["account_status"] == "none"
    assert rows["3"]["reasons"] == "duplicate_email"


def test_mail_deliver_exits_zero_when_nothing_is_left(setup: tuple[SqliteErp, Path]) -> None:
    """`mail deliver` delivers what the sync queued and exits 0 once nothing is pending."""
    erp, config = setup
    config.write_text(config.read_text() + "\n[mail]\ndeliver_after_sync = false\n")
    erp.add(1)
    assert run_json(config, "sync")["mails_queued"] == 1
    done = run(config, "mail", "deliver")
    assert done.returncode == 0, done.stderr
    assert len(list((config.parent / "mail").glob("*.eml"))) == 1
