"""`integrator sync`: sync now (or plan with --dry-run)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from integrator.cli.app import config_path_option, exit_for, main, open_config
from integrator.cli.output import human_time, print_json, print_table, say
from integrator.cli.progress import meter
from integrator.errors import GuardRefusal, IntegratorError, LockBusy

if TYPE_CHECKING:  # the sync itself (the store, the ODBC reader) loads only when the command runs
    from integrator.config import Config
    from integrator.sync import SyncResult

__all__ = ["sync_command"]


def _print_human(result: SyncResult) -> None:
    title = "Plan (dry run: nothing written)" if result.dry_run else f"Run {result.run_id}: {result.status}"
    print_table(
        title,
        ["records", "created", "re-added", "updated", "removed", "unchanged", "rejected", "quarantined", "mails"],
        [[result.records, result.created, result.readded, result.updated, result.removed, result.unchanged,
          result.rejected, result.quarantined, result.mails_queued]],
    )  # fmt: skip
    if result.rejected_by_reason:
        print_table("Left out, by reason", ["reason", "records"], sorted(result.rejected_by_reason.items()))
    tables = (
        ("Tagged but left out", result.rejections, ["reasons"]),
        ("Quarantined (retried next run)", result.quarantine, ["origin", "error"]),
        ("Removals deferred (source had rows without erp_id)", result.deferred_removals, ["login", "reasons"]),
        ("Refused removals", result.refused, ["login", "reasons"]),
        ("Planned actions", result.actions if result.dry_run else [], ["action", "login", "reason"]),
    )
    for title, rows, columns in tables:
        if rows:
            keys = ["erp_id", "contact_id"] if any(r.get("contact_id") for r in rows) else ["erp_id"]
            headers = [{"origin": "where"}.get(c, c) for c in (*keys, *columns)]
            print_table(title, headers, [[r.get(c) or "" for c in (*keys, *columns)] for r in rows])
    if result.mail:
        say(_mail_line(result.mail))


def _mail_line(report: dict[str, object]) -> str:
    if "sent" not in report:
        return f"mail: delivery failed ({report.get('error')}); the mails stay pending"
    sent, failed, pending = report["sent"], report.get("failed", 0), report.get("pending_left", 0)
    line = f"mail: {sent} sent, {failed} failed, {pending} left pending"
    if report.get("backend_error"):
        line += f" (mail server: {report['backend_error']})"
    held_by, held_until = report.get("held_by"), report.get("held_until")
    if held_by and isinstance(held_until, datetime):
        line += f", held by the cap [mail] {held_by} until {human_time(held_until)}"
    return line


@main.command("sync")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--allow-mass-removal", is_flag=True, help="Apply even if the deletion guard would refuse.")
@click.option("--only", "only", metavar="ERP_ID", help="Sync just this customer.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@config_path_option
def sync_command(config_path: Path, dry_run: bool, allow_mass_removal: bool, only: str | None, as_json: bool) -> None:
    """Sync now: read the ERP, apply creates, updates and removals, queue (and deliver) mail."""
    try:
        result = _sync(open_config(config_path), as_json, dry_run=dry_run, allow_mass_removal=allow_mass_removal,
                       only=only)  # fmt: skip
    except IntegratorError as exc:  # no run to report (bad config, lock held, store unreachable): still one object
        if as_json:
            print_json(_not_run(exc).to_json())
        exit_for(exc)
    except Exception as exc:  # before a run started; the group says it on stderr and exits 1
        if as_json:
            from integrator.sync import SyncResult

            print_json(
                SyncResult(run_id=None, status="failed", message=f"unexpected {type(exc).__name__}: {exc}").to_json()
            )
        raise
    if as_json:
        print_json(result.to_json())  # the object's `message` says why; stderr keeps only the log line
    else:
        _print_human(result)
        if result.message:  # said once, where every command says its errors (the log line is for collectors)
            click.echo(("refused: " if result.status == "refused" else "error: ") + result.message, err=True)
    sys.exit(result.exit_code)


def _not_run(exc: IntegratorError) -> SyncResult:
    """The `--json` summary of a sync that could not start: nothing read, nothing written, and why."""
    from integrator.sync import SyncResult

    status = "refused" if isinstance(exc, GuardRefusal | LockBusy) else "failed"
    return SyncResult(run_id=None, status=status, message=str(exc))


def _sync(config: Config, as_json: bool, **options: Any) -> SyncResult:
    from integrator.sync import run_sync

    if config.source.preset:  # a preset the database does not fit is a config error (exit 2), before any run
        _verify_preset(config)
    if as_json or not sys.stdout.isatty():
        return run_sync(config, catch_unexpected=True, **options)
    # On a terminal: one line with the count and the rate of the read, then of the writes with the time left (the
    # plan tells their total); it is gone when the summary prints.
    stages = {"read": "reading the ERP", "apply": "writing accounts"}
    with meter("connecting", unit="records") as progress:
        current: list[str] = []

        def show(phase: str, count: int, total: int | None) -> None:
            if current[-1:] != [phase]:
                current.append(phase)
                progress.stage(stages.get(phase, phase), total)
            progress.update(count)

        return run_sync(config, progress=show, catch_unexpected=True, **options)


def _verify_preset(config: Config) -> None:
    """Raise the `ConfigError` naming the preset's missing tables and columns; an ERP that cannot be reached is
    left to the run, which retries the connection and records the failure."""
    from integrator.connectors.odbc_fetch import OdbcFetch
    from integrator.errors import SourceError

    try:
        OdbcFetch(config.source).verify_preset()
    except SourceError:
        return
