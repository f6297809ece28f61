"""What an operator sees: a failure said once (stdout for results, stderr for the error line and the logs), a
group's `--config` reaching its subcommands, one "not found" message and exit code for every lookup, and
timestamps labelled UTC. Driven through the installed `integrator` executable, as a script or a person runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.erp import SqliteErp

from tests.conftest import require_odbc_driver

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))
NOT_FOUND = re.compile(r"^error: no [a-zA-Z ]+ with [a-zA-Z ,]+ (\d+|'[^']*')$")
NAIVE_ISO = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(?![\d.:]| ?UTC|[+-]\d\d:\d\d|Z)")
LABELLED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`integrator ARGS` from `cwd`, stdout and stderr captured separately (both pipes), a wide table layout."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [INTEGRATOR, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def json_of(done: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    return json.loads(done.stdout)


def human_lines(stderr: str) -> list[str]:
    """The stderr lines that are not structured log lines (JSON, as logs are off a terminal)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def log_events(stderr: str) -> list[str]:
    return [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]


def make_site(root: Path) -> tuple[SqliteErp, Path, Path]:
    """An ERP, its config in its own folder, and an empty working folder with no ./config.toml."""
    erp = SqliteErp(root / "erp.db")
    folder = root / "site"
    folder.mkdir()
    config = folder / "config.toml"
    source = erp.source()
    config.write_text(
        f'[source]\nkind = "odbc"\nconnection_string = "{source["connection_string"]}"\nquery = "{source["query"]}"\n'
    )
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return erp, config, elsewhere


def synced(site: tuple[SqliteErp, Path, Path], count: int = 2) -> dict[str, Any]:
    erp, config, elsewhere = site
    for erp_id in range(1, count + 1):
        erp.add(erp_id)
    return json_of(run(elsewhere, "sync", "--config", str(config), "--json"))


@pytest.fixture
def site(tmp_path: Path, sqlite_odbc: str) -> tuple[SqliteErp, Path, Path]:
    return make_site(tmp_path)


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """One site synced once (customers 1 and 2, their mail sent), shared by the tests that only look:
    its config, the working folder without ./config.toml, and the run's id."""
    require_odbc_driver("SQLite3")
    site = make_site(tmp_path_factory.mktemp("known"))
    return site[1], site[2], synced(site)["run_id"]


# (a) a failure is said once --------------------------------------------------------------------------------


def test_failed_sync_says_its_error_once_on_stderr_beside_its_log_line(site: tuple[SqliteErp, Path, Path]) -> None:
    """A source query naming a missing table: stdout has the run's table and no error; stderr has one
    `error:` line and the `sync_failed` log line; the error text appears exactly twice in all (line + log)."""
    _, config, elsewhere = site
    config.write_text(config.read_text().replace("FROM customers", "FROM nothing_here"))
    done = run(elsewhere, "sync", "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert "Run 1: failed" in done.stdout
    assert "nothing_here" not in done.stdout and "error" not in done.stdout
    errors = [line for line in human_lines(done.stderr) if line.startswith("error:")]
    assert len(errors) == 1 and "the source query failed" in errors[0] and "no such table" in errors[0]
    assert log_events(done.stderr).count("sync_failed") == 1
    assert (done.stdout + done.stderr).count("no such table: nothing_here") == 2


def test_failed_sync_with_json_prints_only_the_object_on_stdout(site: tuple[SqliteErp, Path, Path]) -> None:
    """`--json`: stdout is exactly one JSON object carrying the reason; stderr has the log line, no copy."""
    _, config, elsewhere = site
    config.write_text('[source]\nkind = "csv"\npath = "missing.csv"\n')
    done = run(elsewhere, "sync", "--config", str(config), "--json")
    summary = json_of(done, code=1)
    assert summary["status"] == "failed" and "missing.csv does not exist" in summary["message"]
    assert human_lines(done.stderr) == [] and log_events(done.stderr).count("sync_failed") == 1
    assert (done.stdout + done.stderr).count("missing.csv does not exist") == 2


def test_missing_csv_without_json_names_the_file_once_on_stderr(site: tuple[SqliteErp, Path, Path]) -> None:
    _, config, elsewhere = site
    config.write_text('[source]\nkind = "csv"\npath = "missing.csv"\n')
    done = run(elsewhere, "sync", "--config", str(config))
    assert done.returncode == 1
    assert "missing.csv" not in done.stdout
    assert [line for line in human_lines(done.stderr) if "missing.csv" in line] == [
        f"error: the CSV file {config.parent / 'missing.csv'} does not exist"
    ]


def test_refused_sync_says_refused_once_on_stderr(site: tuple[SqliteErp, Path, Path]) -> None:
    """A guard refusal follows the same rule: the refused removals on stdout, the `refused:` line on stderr."""
    erp, config, elsewhere = site
    synced(site)
    erp.clear()
    done = run(elsewhere, "sync", "--config", str(config))
    assert done.returncode == 4
    assert "Refused removals" in done.stdout and "refused:" not in done.stdout
    refused = [line for line in human_lines(done.stderr) if line.startswith("refused:")]
    assert len(refused) == 1 and log_events(done.stderr).count("sync_refused") == 1


# (b) a group's --config reaches its subcommands ------------------------------------------------------------


def test_group_level_config_applies_to_every_subcommand(known: tuple[Path, Path, int]) -> None:
    """Run from a folder without ./config.toml: `GROUP --config F SUB` uses F for history, accounts and mail,
    and so does the root's `integrator --config F SUB`."""
    config, elsewhere, run_id = known
    shown = json_of(run(elsewhere, "history", "--config", str(config), "show", str(run_id), "--json"))
    assert shown["id"] == run_id and {a["action"] for a in shown["actions"]} == {"create"}
    accounts = json_of(run(elsewhere, "accounts", "--config", str(config), "list", "--json"))
    assert [a["erp_id"] for a in accounts] == ["1", "2"]
    shown_account = json_of(run(elsewhere, "accounts", "--config", str(config), "show", "klient1@example.pl", "--json"))
    assert shown_account["erp_id"] == "1"
    mails = json_of(run(elsewhere, "mail", "--config", str(config), "list", "--status", "sent", "--json"))
    assert len(mails) == 2
    assert json_of(run(elsewhere, "--config", str(config), "history", "--json"))[0]["id"] == run_id
    assert json_of(run(elsewhere, "--config", str(config), "history", "show", str(run_id), "--json"))["id"] == run_id


def test_a_subcommands_own_config_wins_over_the_groups(known: tuple[Path, Path, int]) -> None:
    config, elsewhere, run_id = known
    bogus = elsewhere / "absent.toml"
    own = run(elsewhere, "history", "--config", str(bogus), "show", str(run_id), "--config", str(config), "--json")
    assert json_of(own)["id"] == run_id
    inner = run(elsewhere, "--config", str(bogus), "accounts", "--config", str(config), "list", "--json")
    assert len(json_of(inner)) == 2
    wrong = run(elsewhere, "accounts", "--config", str(config), "list", "--config", str(bogus))
    assert wrong.returncode == 2 and "absent.toml" in wrong.stderr  # the subcommand's (missing) file was used


# (c) one "not found" ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("accounts", "show", "nikt@example.pl"), "'nikt@example.pl'"),
        (("block", "nikt@example.pl", "--reason", "test"), "'nikt@example.pl'"),
        (("unblock", "nikt@example.pl"), "'nikt@example.pl'"),
        (("reset-password", "nikt@example.pl"), "'nikt@example.pl'"),
        (("resend-activation", "nikt@example.pl"), "'nikt@example.pl'"),
        (("explain", "999"), "'999'"),
        (("history", "show", "999"), "999"),
        (("mail", "retry", "999"), "999"),
    ],
)
def test_every_unknown_login_or_id_exits_2_with_one_message(
    known: tuple[Path, Path, int], args: tuple[str, ...], key: str
) -> None:
    """Each command looking up a login or id it cannot find exits 2 with `error: no … with … KEY` on stderr."""
    config, elsewhere, _ = known
    done = run(elsewhere, *args, "--config", str(config))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    [line] = human_lines(done.stderr)
    assert NOT_FOUND.match(line) and line.endswith(f" {key}"), line


def test_explain_of_a_customer_gone_from_the_source_still_explains(site: tuple[SqliteErp, Path, Path]) -> None:
    """An ERP id known only from its accounts' history is found: not the "not found" case."""
    erp, config, elsewhere = site
    synced(site)
    erp.delete(2)
    run(elsewhere, "sync", "--config", str(config), "--json")
    explained = json_of(run(elsewhere, "explain", "2", "--config", str(config), "--json"))
    assert explained["in_source"] is False and [i["status"] for i in explained["identities"]] == ["removed"]


# (d) timestamps labelled UTC -------------------------------------------------------------------------------


def test_accounts_show_labels_its_timestamps_utc_and_keeps_the_json(known: tuple[Path, Path, int]) -> None:
    """Human output shows `YYYY-MM-DD HH:MM:SS UTC` and no naive timestamp; `--json` keeps its shape and values."""
    config, elsewhere, _ = known
    human = run(elsewhere, "accounts", "show", "klient1@example.pl", "--config", str(config))
    assert human.returncode == 0, human.stderr
    assert len(LABELLED.findall(human.stdout)) >= 3  # created_at, updated_at and the `created` event
    assert NAIVE_ISO.findall(human.stdout) == [], human.stdout
    shown = json_of(run(elsewhere, "accounts", "show", "klient1@example.pl", "--config", str(config), "--json"))
    [listed] = [a for a in json_of(run(elsewhere, "accounts", "list", "--config", str(config), "--json"))
                if a["erp_id"] == "1"]  # fmt: skip
    assert {k: v for k, v in shown.items() if k != "events"} == listed
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", shown["created_at"])  # unchanged: naive ISO
    assert {e["kind"] for e in shown["events"]} >= {"created"}
