"""The ledger of runs, and the quarantine list."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from integrator.clock import utcnow
from integrator.identity import ids_of
from integrator.logs import get_logger
from integrator.reconcile import Quarantined, Rejection
from integrator.store.disconnect import is_disconnect, lost, on_new_session, reported_as
from integrator.store.schema import quarantine, run_actions, runs

__all__ = ["finish_run", "record_quarantine", "record_rejections", "start_run"]

log = get_logger("runs")


@reported_as("the start of the run")
def start_run(conn: sa.Connection, trigger: str) -> int:
    """Insert the run row (status running) and return its id.

    Called with the sync lock held, so a run still marked running was killed or crashed: it is marked
    `interrupted` (its applied batches stand; this run converges from them).
    """
    now = utcnow()
    conn.execute(
        runs.update()
        .where(runs.c.status == "running")
        .values(status="interrupted", finished_at=now, error="the run ended without finishing (killed or crashed)")
    )
    run_id = conn.execute(
        runs.insert().values(started_at=utcnow(), status="running", trigger=trigger, dry_run=False)
    ).inserted_primary_key[0]
    conn.commit()
    return int(run_id)


def finish_run(
    conn: sa.Connection,
    run_id: int,
    status: str,
    counts: dict[str, int],
    summary: dict[str, Any],
    error: str | None = None,
) -> None:
    """Close the run row with its counts and summary: on the run's connection, or on a new session when the
    run's own was lost (the row must say how the run ended; writing it twice writes the same)."""
    update = (
        runs.update()
        .where(runs.c.id == run_id)
        .values(
            finished_at=utcnow(),
            status=status,
            summary=json.dumps(summary, ensure_ascii=False),
            error=error,
            **counts,
        )
    )
    step = "recording the run's end"
    if not conn.invalidated:
        try:
            conn.execute(update)
            conn.commit()
            return
        except sa.exc.DBAPIError as exc:
            if not is_disconnect(exc):
                raise
            conn.rollback()
            log.warning("store_connection_lost", step=step, error=str(lost(step, exc)), retrying="on a new session")
    on_new_session(conn.engine, step, lambda fresh: fresh.execute(update))


@reported_as("recording the run's rejections")
def record_rejections(conn: sa.Connection, run_id: int, rejections: Sequence[Rejection]) -> None:
    """Tagged records left out this run, one action each (untagged ones are only counted)."""
    rows = [
        {"run_id": run_id, **ids_of(r.erp_id), "action": "reject", "reason": ", ".join(r.reasons)} for r in rejections
    ]
    for start in range(0, len(rows), 5000):
        conn.execute(run_actions.insert(), rows[start : start + 5000])
    conn.commit()


@reported_as("recording the quarantine list")
def record_quarantine(
    conn: sa.Connection, run_id: int, items: Sequence[Quarantined], *, full_run: bool, only: str | None = None
) -> None:
    """Keep the quarantine list current: add or bump what failed now, drop what applied cleanly (every other
    customer after a full run; the one customer of a `--only` run)."""
    now = utcnow()
    failed_ids = [q.erp_id for q in items]
    for item in items:
        existing = conn.execute(sa.select(quarantine.c.attempts).where(quarantine.c.erp_id == item.erp_id)).first()
        error = f"{item.origin}: {item.error}" if item.origin else item.error
        if existing:
            conn.execute(
                quarantine.update()
                .where(quarantine.c.erp_id == item.erp_id)
                .values(error=error, last_run_id=run_id, attempts=existing.attempts + 1, last_seen_at=now)
            )
        else:
            conn.execute(
                quarantine.insert().values(
                    erp_id=item.erp_id,
                    error=error,
                    first_run_id=run_id,
                    last_run_id=run_id,
                    attempts=1,
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
        conn.execute(
            run_actions.insert().values(run_id=run_id, **ids_of(item.erp_id), action="quarantine", reason=error)
        )
    if full_run:
        stale = quarantine.delete()
        if failed_ids:
            stale = stale.where(quarantine.c.last_run_id != run_id)
        conn.execute(stale)
    elif only is not None and only not in failed_ids:
        conn.execute(quarantine.delete().where(quarantine.c.erp_id == only))
    conn.commit()
