"""`integrator --help`, `--version`, a group's `--help` and usage errors start at once (issue 16, point 1).

Checked by what they import, not by a time: the installed `integrator` runs under `python -X importtime`, and
no database, ODBC, template, validation, mail, API, rich, logging or retry library may appear in its list. The
command list of `--help` comes from `integrator.cli.app.COMMANDS` without importing the command modules, so a
test holds those summaries equal to the commands' own.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from integrator.cli.app import COMMANDS, main

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))

HEAVY = frozenset(
    {
        # databases and ODBC
        "sqlalchemy", "alembic", "psycopg", "psycopg2", "pymysql", "pyodbc", "sqlglot",
        # templates, validation
        "jinja2", "markupsafe", "pydantic", "pydantic_core", "email_validator",
        # mail, passwords
        "aiosmtpd", "argon2", "smtplib",
        # the portal API
        "fastapi", "starlette", "uvicorn", "authlib", "httpx",
        # output, logs, retries, the scheduler
        "rich", "pygments", "structlog", "tenacity", "apscheduler",
    }
)  # fmt: skip
"""Top-level packages none of the quick answers may import."""


def imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the installed `integrator ARGS` under `-X importtime`: the result and every top-level package imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", INTEGRATOR, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    packages = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "click" in packages, done.stderr[-2000:]  # the list was read (click is always there)
    return done, packages


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["--version"], 0),
        (["sync", "--help"], 0),
        (["mail", "--help"], 0),
        (["accounts", "--help"], 0),
        (["history", "--help"], 0),
        (["nonsense"], 2),  # an unknown command
        (["explain"], 2),  # a missing argument
        (["sync", "--no-such-option"], 2),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else f"exit {value}",
)
def test_quick_answers_import_no_heavy_library(args: list[str], code: int) -> None:
    done, packages = imported(*args)
    assert done.returncode == code, done.stderr[-2000:]
    assert packages & HEAVY == set(), f"integrator {' '.join(args)} imported {sorted(packages & HEAVY)}"


def test_help_lists_every_command_with_its_summary() -> None:
    done, _ = imported("--help")
    listed = done.stdout.split("Commands:", 1)[1].splitlines()
    rows = {line.split()[0]: line.split(None, 1)[1] for line in listed if line.strip()}
    assert set(rows) == set(COMMANDS)
    assert rows["sync"].startswith("Sync now: read the ERP")
    assert rows["unblock"] == "Lift the block on LOGIN."


def test_version_names_the_installed_version() -> None:
    done, _ = imported("--version")
    assert done.stdout.strip() == f"integrator, version {version('integrator')}"


def test_usage_errors_still_say_what_is_wrong() -> None:
    unknown, _ = imported("nonsense")
    assert "No such command 'nonsense'" in unknown.stderr
    missing, _ = imported("explain")
    assert "Missing argument 'ERP_ID'" in missing.stderr


def test_the_summaries_in_COMMANDS_are_the_commands_own() -> None:
    """`--help` lists `COMMANDS`, not the commands: every command module registers exactly the commands the table
    says, and each summary is the first sentence of the command's docstring."""
    ctx = click.Context(main)
    for name, (module, summary) in COMMANDS.items():
        importlib.import_module(f"integrator.cli.{module}")
        command = main.commands[name]
        assert command.get_short_help_str(limit=10_000) == summary, name
        assert main.get_command(ctx, name) is command
    assert set(main.commands) == set(COMMANDS)


def test_the_api_client_scopes_offered_are_the_stores() -> None:
    from integrator.api.clients import SCOPES
    from integrator.cli.api import SCOPES as OFFERED

    assert OFFERED == SCOPES
