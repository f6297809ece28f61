"""The benchmark at a small N, so it cannot rot: every step runs and reports sane counts (never timings)."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_HOST, PG_PORT, require_odbc_driver, require_service

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_benchmark_runs_every_step_with_sane_counts(tmp_path: Path, store: str) -> None:
    """2,000 customers: the initial sync creates the eligible ones, a rerun changes nothing, 1 % and 5 % show."""
    require_odbc_driver("SQLite3")
    if store == "postgresql":
        require_service("PostgreSQL", PG_HOST, PG_PORT)
    bench = _bench()
    base = tmp_path / "erp.db"
    counts = bench.generate_erp(base, 2000)
    assert 1200 < counts["tagged"] < 1500
    rows = {row["step"]: row for row in bench.run_store(store, base, tmp_path, 2000, deliver_limit=200)}
    assert list(rows) == [
        "bare read (reference)",
        "initial sync",
        "no-change resync",
        "resync, 1 % changed a field",
        "resync, 5 % lost the tag",
        "mail deliver (file)",
    ]
    assert rows["bare read (reference)"]["records"] == 2000
    initial = rows["initial sync"]
    assert initial["status"] == "ok" and 1150 < initial["created"] <= counts["tagged"]
    assert initial["mails_queued"] == initial["created"]
    nochange = rows["no-change resync"]
    assert (nochange["created"], nochange["updated"], nochange["removed"]) == (0, 0, 0)
    assert nochange["unchanged"] == initial["created"]
    changed = rows["resync, 1 % changed a field"]
    assert 5 <= changed["updated"] <= 20 and changed["removed"] == 0
    untagged = rows["resync, 5 % lost the tag"]
    assert 40 <= untagged["removed"] <= 90 and untagged["created"] == 0
    assert 150 <= rows["mail deliver (file)"]["sent"] <= 200  # mails of removed accounts are cancelled, not sent
    assert all(row["peak_rss_mb"] > 0 and row["ratio"] > 0 for row in rows.values())
    for step in ("initial sync", "no-change resync", "resync, 1 % changed a field", "resync, 5 % lost the tag"):
        row = rows[step]  # each against its own reference, read right before it
        assert row["bare_seconds"] > 0 and row["ratio"] == row["seconds"] / row["bare_seconds"]
    assert "| initial sync |" in bench.markdown(list(rows.values()))


@pytest.mark.slow
def test_repeated_target_steps_report_the_median_run(tmp_path: Path) -> None:
    """`--repeat 3`: the initial sync runs three times into an empty store (it creates the same accounts each
    time), the no-change resync three times; each row is the run with the median ratio."""
    require_odbc_driver("SQLite3")
    bench = _bench()
    base = tmp_path / "erp.db"
    bench.generate_erp(base, 600)
    rows = {row["step"]: row for row in bench.run_store("sqlite", base, tmp_path, 600, deliver_limit=10, repeat=3)}
    initial, nochange = rows["initial sync"], rows["no-change resync"]
    assert initial["created"] > 0 and nochange["unchanged"] == initial["created"]
    assert [run["created"] for run in initial["runs"]] == [initial["created"]] * 3  # each began empty
    for row in (initial, nochange):
        assert len(row["ratios"]) == 3
        assert row["ratio"] == row["seconds"] / row["bare_seconds"] == sorted(row["ratios"])[1]
    assert "ratios" not in rows["resync, 1 % changed a field"]
    assert "(median of 3: " in bench.markdown(list(rows.values()))


@pytest.mark.slow
def test_contacts_benchmark_syncs_one_account_per_eligible_contact(tmp_path: Path) -> None:
    """`--contacts` at 1,500 customers: about 1.5 contacts each; every bare read reads both queries; the initial
    sync creates an account for each eligible contact (a shared e-mail's losers aside), a rerun changes nothing,
    and the customer-level 1 % and 5 % changes reach their contacts' accounts."""
    require_odbc_driver("SQLite3")
    bench = _bench()
    base = tmp_path / "erp.db"
    counts = bench.generate_erp(base, 1500, contacts=True)
    assert 1500 * 1.3 < counts["contacts"] < 1500 * 1.7
    assert counts["contacts"] * 0.5 < counts["eligible_contacts"] < counts["contacts"] * 0.7
    assert counts["tagged"] == bench.generate_erp(tmp_path / "plain.db", 1500)["tagged"]  # the same customers
    rows = {
        row["step"]: row
        for row in bench.run_store("sqlite", base, tmp_path, 1500, deliver_limit=100, repeat=2, contacts=True)
    }
    assert list(rows) == [
        "bare read (reference, both queries)",
        "initial sync",
        "no-change resync",
        "resync, 1 % changed a field",
        "resync, 5 % lost the tag",
        "mail deliver (file)",
    ]
    bare = rows["bare read (reference, both queries)"]
    assert (bare["customer_rows"], bare["contact_rows"]) == (1500, counts["contacts"])
    assert bare["records"] == 1500 + counts["contacts"]
    initial = rows["initial sync"]
    assert initial["status"] == "ok" and initial["records"] == counts["contacts"]
    assert counts["eligible_contacts"] - counts["contacts"] * 0.01 <= initial["created"] <= counts["eligible_contacts"]
    assert initial["mails_queued"] == initial["created"]
    assert [run["created"] for run in initial["runs"]] == [initial["created"]] * 2
    nochange = rows["no-change resync"]
    assert (nochange["created"], nochange["updated"], nochange["removed"]) == (0, 0, 0)
    assert nochange["unchanged"] == initial["created"]
    changed = rows["resync, 1 % changed a field"]  # contacts without a phone of their own take the customer's
    assert 2 <= changed["updated"] <= 20 and changed["removed"] == 0
    untagged = rows["resync, 5 % lost the tag"]  # 5 % of ~1,000 tagged customers, ~1.4 eligible contacts each
    assert 40 <= untagged["removed"] <= 110 and untagged["created"] == 0
    assert 50 <= rows["mail deliver (file)"]["sent"] <= 100
    for step in ("initial sync", "no-change resync"):
        row = rows[step]
        assert row["bare_seconds"] > 0 and row["ratio"] == row["seconds"] / row["bare_seconds"]
        assert row["peak_rss_mb"] > 0 and row["children_peak_rss_mb"] > 0  # the reader process is measured too
    with sqlite3.connect(tmp_path / "sqlite-contacts" / "store.db") as store:
        per_contact = store.execute("SELECT count(*) FROM accounts WHERE contact_id IS NOT NULL").fetchone()[0]
    assert per_contact == initial["created"]
    assert f"| 1500 customer + {counts['contacts']} contact rows |" in bench.markdown(list(rows.values()))


@pytest.mark.slow
def test_whole_process_mode_times_the_installed_command(tmp_path: Path) -> None:
    """`--whole-process` at 500 customers: each step is the installed `integrator` command as ops run it (its
    --json summary gives the counts), and each reference is the faster of a streamed and a buffered bare read."""
    require_odbc_driver("SQLite3")
    bench = _bench()
    base = tmp_path / "erp.db"
    bench.generate_erp(base, 500)
    rows = {
        row["step"]: row for row in bench.run_store("sqlite", base, tmp_path, 500, deliver_limit=20, whole_process=True)
    }
    reference = rows["bare read (reference)"]
    assert reference["records"] == 500
    assert reference["seconds"] == min(reference["streamed_seconds"], reference["buffered_seconds"])
    initial, nochange = rows["initial sync"], rows["no-change resync"]
    assert initial["status"] == "ok" and initial["created"] == initial["mails_queued"] > 250
    assert nochange["unchanged"] == initial["created"] and nochange["exit_code"] == 0
    assert rows["resync, 5 % lost the tag"]["removed"] > 0
    sent = rows["mail deliver (file)"]["sent"]
    assert 10 <= sent <= 20  # mails of removed accounts are cancelled, not sent
    assert len(list((tmp_path / "sqlite" / "mail").glob("*.eml"))) == sent  # the command, not a function, sent them
    assert 'query = "SELECT erp_id' in (tmp_path / "sqlite" / "config.toml").read_text()
    assert all(row["peak_rss_mb"] > 0 and row["ratio"] > 0 for row in rows.values())
