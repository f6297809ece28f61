"""`integrator history` (past runs with their counts) and `history show RUN_ID` (every action, with reasons)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from integrator.cli.app import config_option, config_path_option, handle_errors, main, not_found, open_config
from integrator.cli.output import print_json, print_table

if TYPE_CHECKING:
    import sqlalchemy as sa

    from integrator.config import Config

__all__ = ["history_group"]

_COUNTS = ("records", "created", "updated", "removed", "unchanged", "rejected", "quarantined", "mails_queued")


def _run_dict(row: sa.RowMapping) -> dict[str, object]:
    data = dict(row)
    data["summary"] = json.loads(data["summary"]) if data.get("summary") else {}
    data["dry_run"] = bool(data["dry_run"])
    return data


@main.group("history", invoke_without_command=True)
@click.option("--limit", default=20, show_default=True, help="How many recent runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_path_option
@handle_errors
@click.pass_context
def history_group(ctx: click.Context, limit: int, as_json: bool, config_path: Path) -> None:
    """Past runs, newest first, with their counts (`history show RUN_ID`: one run's actions)."""
    if ctx.invoked_subcommand is not None:
        return
    import sqlalchemy as sa

    from integrator.store.db import open_store
    from integrator.store.schema import runs

    config = open_config(config_path)
    with open_store(config.store.url).connect() as conn:
        rows = [_run_dict(r) for r in conn.execute(sa.select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Runs",
        ["run", "started", "status", "trigger", *_COUNTS],
        ([r["id"], r["started_at"], r["status"], r["trigger"], *(r[c] for c in _COUNTS)]
         for r in rows),
    )  # fmt: skip


@history_group.command("show")
@click.argument("run_id", type=int)
@click.option(
    "--action", help="Only this action (create, readd, restore, update, remove, reject, quarantine, refused)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@handle_errors
def show_command(config: Config, run_id: int, action: str | None, as_json: bool) -> None:
    """Every action of run RUN_ID with its reason (refused removals included)."""
    import sqlalchemy as sa

    from integrator.store.db import open_store
    from integrator.store.queries import actions_of_run
    from integrator.store.schema import runs

    with open_store(config.store.url).connect() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if run is None:
            not_found("run", "id", run_id)
        actions = list(actions_of_run(conn, run_id, action))
    run_data = _run_dict(run)
    if as_json:
        print_json({**run_data, "actions": actions})
        return
    print_table(f"Run {run_id}", ["field", "value"], [[k, v] for k, v in run_data.items()])
    if any(a["contact_id"] is not None for a in actions):  # a contacts source: which contact each action is for
        print_table(
            "Actions",
            ["erp_id", "contact", "action", "reason", "account"],
            ([a["erp_id"], a["contact_id"], a["action"], a["reason"], a["account_id"]] for a in actions),
        )
        return
    print_table("Actions", ["erp_id", "action", "reason", "account"],
                ([a["erp_id"], a["action"], a["reason"], a["account_id"]] for a in actions))  # fmt: skip
