"""`integrator mail deliver|list|retry`: the outbox for ops."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.cli.app import (
    EXIT_CONFIG,
    EXIT_QUARANTINED,
    config_option,
    group_config_option,
    handle_errors,
    main,
    not_found_line,
)
from integrator.cli.output import console, print_json, print_table
from integrator.config import Config
from integrator.mail.delivery import DeliveryReport, deliver_pending
from integrator.mail.outbox import MAIL_STATUSES, MailNotRetryable, list_mail, retry_mail
from integrator.store.db import open_store
from integrator.store.schema import outbox

__all__ = ["mail_group", "print_report"]


@main.group("mail")
@group_config_option
def mail_group() -> None:
    """Deliver, list and retry queued mail."""


def print_report(report: DeliveryReport) -> None:
    """The human summary of a delivery (problems on stderr)."""
    console.print(
        f"mail: sent {report.sent}, failed {report.failed}, retry later {report.retry_later}, "
        f"cancelled {report.cancelled}, pending {report.pending_left}"
    )
    if report.failed_ids:
        ids = " ".join(str(i) for i in report.failed_ids)
        click.echo(f"failed mails: {ids} (see `integrator mail list --failed`, then `mail retry ID`)", err=True)
    if report.backend_error:
        click.echo(f"mail backend unavailable, mail stays pending: {report.backend_error}", err=True)


@mail_group.command("deliver")
@click.option("--limit", type=click.IntRange(min=1), help="Deliver at most this many mails.")
@click.option("--due-only", is_flag=True, help="Skip mails still waiting out their retry backoff (as the daemon does).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@config_option
@handle_errors
def deliver_command(config: Config, limit: int | None, due_only: bool, as_json: bool) -> None:
    """Deliver pending mail now; exit 0 when none is left pending, 3 when some is (retry later)."""
    report = deliver_pending(open_store(config.store.url), config, limit=limit, ignore_backoff=not due_only)
    if as_json:
        print_json(asdict(report))
    else:
        print_report(report)
    sys.exit(0 if report.pending_left == 0 else EXIT_QUARANTINED)


@mail_group.command("list")
@click.option("--failed", is_flag=True, help="Only failed mails (same as --status failed).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(MAIL_STATUSES),
              help="Only mails in this status (repeatable); default: everything not sent.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@config_option
@handle_errors
def list_command(config: Config, failed: bool, statuses: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """Queued, failed and cancelled mail, with attempts and the last error."""
    wanted = tuple(statuses) + (("failed",) if failed else ())
    mails = list_mail(open_store(config.store.url), statuses=wanted or None, limit=limit)
    if as_json:
        print_json([asdict(m) for m in mails])
        return
    print_table(
        None,
        ["id", "kind", "recipient", "status", "attempts", "next attempt", "last error", "created"],
        ([m.id, m.kind, m.recipient, m.status, m.attempts, m.next_attempt_at, m.last_error, m.created_at]
         for m in mails),
    )  # fmt: skip


def _exists(engine: Engine, mail_id: int) -> bool:
    """Told apart from "not retryable" so an unknown id gets the one "not found" message."""
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox.c.id).where(outbox.c.id == mail_id)).first() is not None


@mail_group.command("retry")
@click.argument("mail_ids", metavar="ID...", type=int, nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed mail.")
@config_option
@handle_errors
def retry_command(config: Config, mail_ids: tuple[int, ...], all_failed: bool) -> None:
    """Make failed mail pending again (fresh attempt count); the next delivery sends it."""
    if not mail_ids and not all_failed:
        raise click.UsageError("give one or more mail IDs, or --all-failed")
    engine = open_store(config.store.url)
    ids = list(mail_ids) + ([m.id for m in list_mail(engine, statuses=("failed",))] if all_failed else [])
    refused = False
    for mail_id in dict.fromkeys(ids):
        if not _exists(engine, mail_id):
            click.echo(not_found_line("mail", "id", mail_id), err=True)
            refused = True
            continue
        try:
            mail = retry_mail(engine, mail_id)
        except MailNotRetryable as exc:
            click.echo(f"refused: {exc}", err=True)
            refused = True
            continue
        click.echo(f"mail #{mail.id} ({mail.kind} to {mail.recipient}): pending again")
    if refused:
        sys.exit(EXIT_CONFIG)
