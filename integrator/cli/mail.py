"""`integrator mail deliver|list|retry|status`: the outbox for ops.

The database and mail stack are imported inside each command, so `integrator mail --help` starts at once.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from integrator.cli.app import (
    EXIT_CONFIG,
    EXIT_QUARANTINED,
    config_option,
    group_config_option,
    handle_errors,
    main,
    not_found_line,
)
from integrator.cli.output import human_time, print_json, print_table, say
from integrator.cli.progress import meter

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from integrator.config import Config
    from integrator.mail.delivery import DeliveryReport
    from integrator.mail.status import MailStatus

__all__ = ["MAIL_STATUSES", "mail_group", "print_report"]

MAIL_STATUSES = ("pending", "sent", "failed", "cancelled")
"""= integrator.mail.outbox.MAIL_STATUSES (a test holds them equal), here so `--help` imports no database."""


@main.group("mail")
@group_config_option
def mail_group() -> None:
    """Deliver, list and retry queued mail."""


def print_report(report: DeliveryReport) -> None:
    """The human summary of a delivery (problems on stderr)."""
    say(
        f"mail: sent {report.sent}, failed {report.failed}, retry later {report.retry_later}, "
        f"cancelled {report.cancelled}, pending {report.pending_left}"
    )
    if report.failed_ids:
        ids = " ".join(str(i) for i in report.failed_ids)
        click.echo(f"failed mails: {ids} (see `integrator mail list --failed`, then `mail retry ID`)", err=True)
    if report.backend_error:
        click.echo(f"mail backend unavailable, mail stays pending: {report.backend_error}", err=True)
    if report.held_by and report.held_until:
        click.echo(
            f"pending left, held by the cap [mail] {report.held_by} until {human_time(report.held_until)} "
            "(the next delivery goes on from there)",
            err=True,
        )


def _at_most(count: int, limit: int | None) -> int:
    return count if limit is None else min(count, limit)


@mail_group.command("deliver")
@click.option("--limit", type=click.IntRange(min=1), help="Deliver at most this many mails.")
@click.option("--due-only", is_flag=True, help="Skip mails still waiting out their retry backoff (as the daemon does).")
@click.option(
    "--no-wait",
    is_flag=True,
    help="Stop when [mail] max_per_minute is reached instead of waiting for the next free slot.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@config_option
@handle_errors
def deliver_command(config: Config, limit: int | None, due_only: bool, no_wait: bool, as_json: bool) -> None:
    """Deliver pending mail now; exit 0 when none is left pending, 3 when some is (retry later, or held by a
    sending cap).

    Under [mail] max_per_minute it paces itself (waits for free slots) unless --no-wait; [mail] max_per_day stops
    it, and the next delivery (the daemon's, or this command again) goes on once the cap frees slots.
    """
    from integrator.mail.delivery import deliver_pending
    from integrator.mail.outbox import count_pending
    from integrator.store.db import open_store

    engine = open_store(config.store.url)
    # On a terminal: the count, mails/s and the time left (of all pending mail, or of --limit); nowhere else.
    # The total is every pending mail (or --limit); with --due-only some of them may not be due yet, so none is told.
    total = _at_most(count_pending(engine), limit) if sys.stdout.isatty() and not due_only else None
    with meter("delivering mail", unit="mails", total=total) as progress:
        report = deliver_pending(
            engine, config, limit=limit, ignore_backoff=not due_only, pace=not no_wait, progress=progress.advance
        )
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
    from integrator.mail.outbox import list_mail
    from integrator.store.db import open_store

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
    import sqlalchemy as sa

    from integrator.store.schema import outbox

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
    from integrator.mail.outbox import MailNotRetryable, list_mail, retry_mail
    from integrator.store.db import open_store

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


def status_json(status: MailStatus) -> dict[str, object]:
    """The `mail status --json` document (README shows its shape)."""
    return {
        "pending": {"total": status.pending_total, "by_kind": status.pending},
        "sent_today": status.sent_today,
        "today_utc": status.today.isoformat(),
        "failed": status.failed,
        "caps": {
            "max_per_minute": status.max_per_minute,
            "max_per_day": status.max_per_day,
            "sent_last_minute": status.sent_last_minute,
            "sent_last_24h": status.sent_last_24h,
            "rate": status.rate,
        },
        "held_by": status.held_by,
        "held_until": status.held_until,
        "empty_at": status.empty_at,
        "now": status.now,
    }


@mail_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@config_option
@handle_errors
def status_command(config: Config, as_json: bool) -> None:
    """Pending mail by kind, sent today (UTC day), failed, the sending caps, and when the queue will be empty."""
    from integrator.clock import utcnow
    from integrator.mail.status import mail_status
    from integrator.store.db import open_store

    status = mail_status(open_store(config.store.url), config, utcnow())
    if as_json:
        print_json(status_json(status))
        return
    kinds = ", ".join(f"{kind} {count}" for kind, count in status.pending.items())
    click.echo(f"pending:      {status.pending_total}" + (f" ({kinds})" if kinds else ""))
    click.echo(f"sent today:   {status.sent_today} (UTC day {status.today.isoformat()})")
    click.echo(f"failed:       {status.failed}" + (" (see `integrator mail list --failed`)" if status.failed else ""))
    windows = f"last minute {status.sent_last_minute}, last 24 h {status.sent_last_24h}"
    click.echo(f"caps:         {status.rate} (sent {windows})")
    if status.held_by and status.held_until:
        click.echo(f"held:         by [mail] {status.held_by} until {human_time(status.held_until)}")
    if not status.pending_total:
        click.echo("queue empty:  now")
    elif status.empty_at is None:
        click.echo("queue empty:  no cap, as fast as the backend takes it")
    else:
        click.echo(f"queue empty:  about {human_time(status.empty_at)} at the caps' rate")
