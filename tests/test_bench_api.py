"""The API benchmark (bench/api.py) at a tiny size, so it cannot rot: it seeds a store, starts `integrator serve`,
makes a client with `integrator api-client add`, runs every step and prints the table (never a timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "api.py"
STEPS = ["token (POST /oauth/token)", "login, right password", "login, wrong password", "login, unknown login"]


@pytest.mark.slow  # about 15 s on an idle machine: three processes start, and every request is a real argon2 check
def test_api_benchmark_runs_every_step_and_prints_the_rows(tmp_path: Path) -> None:
    """4 accounts, 4 requests of each kind from 2 clients: tokens 200, right logins 200, wrong and unknown 401 (none
    throttled), the argon2 parameters named, the table printed, and no password in the server's log."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--accounts", "4", "--requests", "4", "--concurrency", "2",
         "--out", str(tmp_path), "--json", str(tmp_path / "result.json")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "argon2id time_cost 3, memory 65536 KiB, parallelism 4" in done.stdout
    assert "| argon2id verify (reference, in-process, 1 thread) |" in done.stdout
    for step in STEPS:
        assert f"| {step} | 4 | 2 |" in done.stdout
    result = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert [row["step"] for row in result["rows"]] == STEPS
    assert [row["statuses"] for row in result["rows"]] == [{"200": 4}, {"200": 4}, {"401": 4}, {"401": 4}]
    assert all(row["p99_ms"] >= row["p50_ms"] > 0 and row["requests_per_s"] > 0 for row in result["rows"])
    assert all(row["peak_rss_mb"] > 0 for row in result["rows"])  # the server's, per step (Linux /proc)
    assert "Hasło-Do-Portalu-2026" not in (tmp_path / "api-serve.log").read_text(encoding="utf-8")


def test_more_wrong_passwords_than_the_throttle_allows_are_refused_up_front(tmp_path: Path) -> None:
    """--requests above 5 x --accounts would measure 429s, not password checks: a usage error, exit 2."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--accounts", "2", "--requests", "11", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "at most 5 x --accounts" in done.stderr
