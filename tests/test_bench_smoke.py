"""The benchmark at a small N, so it cannot rot: every step runs and reports sane counts (never timings)."""

from __future__ import annotations

import importlib.util
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
