"""`integrator explain ERP_ID` and `integrator report`: who has access, and why (not)."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import click

from integrator.access import ReportRow, explain, report
from integrator.cli.app import config_option, handle_errors, main, not_found
from integrator.cli.output import console, print_json, print_table, to_jsonable
from integrator.config import Config
from integrator.rules.reasons import DUPLICATE_EMAIL, DUPLICATE_USERNAME
from integrator.store.db import open_store

__all__ = ["explain_command", "report_command"]


@main.command("explain")
@click.argument("erp_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@handle_errors
def explain_command(config: Config, erp_id: str, as_json: bool) -> None:
    """Every rule's verdict for ERP_ID now, and the history of its accounts."""
    result = explain(config, open_store(config.store.url), erp_id)
    if not (result.in_source or result.identities or result.quarantine or result.last_actions):
        not_found("customer", "ERP id", erp_id)  # nowhere: not in the source, known to no run
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    if not result.in_source:
        console.print(f"{erp_id}: not in the source (a live account would be removed as not_in_source)")
    else:
        console.print(f"{erp_id}: {'eligible' if result.eligible else 'not eligible'}; login {result.login!r}")
        for problem in result.problems:
            console.print(f"  unreadable: {problem}")
        verdicts = [[r.rule, "pass" if r.passed else "exclude", r.description or ""] for r in result.rules]
        print_table("Rules", ["rule", "verdict", "reason"], verdicts)
        for duplicate in (r for r in result.reasons if r in (DUPLICATE_EMAIL, DUPLICATE_USERNAME)):
            holder = f"customer {result.login_held_by}" if result.login_held_by else "another customer"
            console.print(f"  {duplicate}: {holder} keeps or gets this login")
    if result.quarantine:
        console.print(f"quarantined since run {result.quarantine['first_run_id']}: {result.quarantine['error']}")
    for account in result.identities:
        print_table(
            f"Identity {account['id']} ({account['status']}{', blocked' if account['blocked'] else ''})",
            ["at", "event", "actor", "run", "details"],
            [[e["at"], e["kind"], e["actor"], e["run_id"], e["changes"] or ""] for e in account["events"]],
        )
    if result.last_actions:
        print_table("Recent sync actions", ["run", "action", "reason"],
                    [[a["run_id"], a["action"], a["reason"]] for a in result.last_actions])  # fmt: skip


@main.command("report")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file, not stdout.")
@config_option
@handle_errors
def report_command(config: Config, fmt: str, output: Path | None) -> None:
    """Access status of every ERP customer: eligible or why not, account status, activated, last login."""
    rows = report(config, open_store(config.store.url))
    stream = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        if fmt == "csv":
            writer = csv.writer(stream)
            writer.writerow([f.name for f in dataclasses.fields(ReportRow)])
            for row in rows:
                writer.writerow(dataclasses.astuple(row))
        else:
            stream.write("[")
            for index, row in enumerate(rows):
                item = json.dumps(to_jsonable(dataclasses.asdict(row)), ensure_ascii=False)
                stream.write(("," if index else "") + "\n  " + item)
            stream.write("\n]\n")
    finally:
        if output:
            stream.close()
