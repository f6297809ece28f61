"""`integrator explain` runs the sync's login contest over the whole source: on README's demo, before any sync,
it calls a customer `duplicate_email` exactly when `sync --dry-run` rejects it so, and `report` agrees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def integrator(*args: str, code: int = 0) -> str:
    done = subprocess.run([INTEGRATOR, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == code, done.stderr
    return done.stdout


@pytest.fixture
def demo(tmp_path: Path, sqlite_odbc: str) -> str:
    """README's demo ERP (`integrator demo DIR`), not synced, read per customer (its `contacts_query` left out, so
    the contest is over the customers' own e-mails): its config path."""
    integrator("demo", str(tmp_path / "demo"))
    config = tmp_path / "demo" / "config.toml"
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    config.write_text("".join(line for line in lines if not line.startswith("contacts_query")), encoding="utf-8")
    return str(config)


def explained(config: str, erp_id: str) -> dict[str, Any]:
    return json.loads(integrator("explain", erp_id, "--config", config, "--json"))


def test_explain_runs_the_sync_contest_before_and_after_the_first_sync(demo: str) -> None:
    """README's example, 1103, loses a shared e-mail: before any sync, dry-run rejects it and explain says so,
    naming who gets the login; every other loser gets the same verdict from both, and `report` agrees. After the
    sync, the winner's account is live and explain still says duplicate_email, naming the same customer."""
    assert json.loads(integrator("accounts", "list", "--config", demo, "--json")) == []
    plan = json.loads(integrator("sync", "--dry-run", "--json", "--config", demo))
    losers = {r["erp_id"] for r in plan["rejections"] if "duplicate_email" in r["reasons"]}
    assert "1103" in losers
    for erp_id in sorted(losers):
        result = explained(demo, erp_id)
        assert (result["eligible"], result.get("reasons")) == (False, ["duplicate_email"]), erp_id
    before = explained(demo, "1103")
    winner = explained(demo, before["login_held_by"])
    assert winner["eligible"] and winner["login"] == before["login"] and winner["erp_id"] not in losers
    text = integrator("explain", "1103", "--config", demo)
    assert "1103: not eligible" in text and f"duplicate_email: customer {winner['erp_id']} keeps or gets" in text
    rows = json.loads(integrator("report", "--format", "json", "--config", demo))
    assert {r["erp_id"] for r in rows if "duplicate_email" in r["reasons"]} == losers

    summary = json.loads(integrator("sync", "--json", "--config", demo))
    assert "1103" in {r["erp_id"] for r in summary["rejections"] if "duplicate_email" in r["reasons"]}
    after = explained(demo, "1103")
    assert (after["eligible"], after["reasons"], after["login_held_by"]) == (
        False,
        ["duplicate_email"],
        winner["erp_id"],
    )
