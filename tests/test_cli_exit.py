"""The installed command ends with `os._exit` once it has answered (`integrator.cli.run`), skipping the
interpreter's teardown of a large heap: what a normal exit would do that matters must still happen, in full."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from support.crash import INTEGRATOR, integrator, integrator_json, write_config
from support.erp import SqliteErp, make_config


def _shop(tmp_path: Path, customers: int = 30) -> Path:
    erp = SqliteErp(tmp_path / "erp.db")
    for n in range(1, customers + 1):
        erp.add(n, email=f"kupiec{n}@example.pl", tags="b2b")
    return write_config(make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path))


def test_a_sync_answers_exits_with_its_code_and_leaves_every_commit_in_the_database_file(tmp_path: Path) -> None:
    """The summary is printed whole, the exit code is the command's, and the store's connections were closed:
    SQLite checkpointed its write-ahead log, so the database file alone (what a file backup copies) holds the
    accounts."""
    config = _shop(tmp_path)
    summary = integrator_json(config, "sync")
    assert (summary["status"], summary["created"]) == ("ok", 30)
    assert not (tmp_path / "store.db-wal").exists() or (tmp_path / "store.db-wal").stat().st_size == 0
    copy = tmp_path / "backup.db"
    copy.write_bytes((tmp_path / "store.db").read_bytes())
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT count(*) FROM accounts").fetchone() == (30,)
    assert integrator_json(config, "sync")["unchanged"] == 30  # the next run finds the store as the last left it


def test_exit_codes_and_messages_pass_through(tmp_path: Path) -> None:
    """Usage errors (2), a config error naming the file (2) and a lookup that finds nothing keep their codes and
    their lines on stderr."""
    usage = subprocess.run([INTEGRATOR, "explain"], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    missing = subprocess.run(
        [INTEGRATOR, "sync", "--config", str(tmp_path / "nowhere.toml")], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2 and "nowhere.toml" in missing.stderr
    config = _shop(tmp_path, customers=3)
    assert integrator(config, "sync").returncode == 0
    unknown = integrator(config, "accounts", "show", "no-such-login@example.pl")
    assert unknown.returncode == 2 and "no-such-login@example.pl" in unknown.stderr


def test_a_reader_that_goes_away_early_gets_no_traceback(tmp_path: Path) -> None:
    """`integrator accounts list | head -1`: the pipe closes before the table is written; the command ends
    quietly, as the shell expects of a filter's source."""
    config = _shop(tmp_path, customers=400)
    assert integrator(config, "sync").returncode == 0
    done = subprocess.run(
        f"'{INTEGRATOR}' accounts list --config '{config}' | head -1",
        shell=True, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
