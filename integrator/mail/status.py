"""`integrator mail status`: what is pending, what went out today, the caps in force, and when the queue empties.

"Today" is the UTC day (midnight to midnight UTC), as every timestamp in the store is UTC. The caps' windows are
the sliding ones delivery counts (`integrator.mail.caps`). The time the queue will be empty is an estimate at the
caps' rate, taking every pending mail as due (a mail waiting out a retry backoff is counted as if it were not), and
assuming deliveries run whenever a slot frees (the daemon's mail schedule, or a `mail deliver` pacing); with no cap
there is no rate to go by, and it says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.config import Config
from integrator.mail.caps import DAY, MINUTE, CapHold, SendCaps, hold_now, window_counts
from integrator.store.schema import outbox

__all__ = ["MailStatus", "empty_after", "mail_status"]


@dataclass(frozen=True)
class MailStatus:
    """The outbox at one moment, as `mail status` shows it."""

    now: datetime
    pending: dict[str, int]
    """Pending mails by kind (due now or waiting out a retry backoff)."""
    pending_total: int
    sent_today: int
    """Mails sent since midnight UTC."""
    today: date
    """The UTC day `sent_today` counts."""
    failed: int
    max_per_minute: int
    max_per_day: int
    sent_last_minute: int
    """Send slots taken in the last 60 seconds (what `max_per_minute` counts)."""
    sent_last_24h: int
    """Send slots taken in the last 24 hours (what `max_per_day` counts)."""
    held_by: str | None
    """The cap that holds mail back right now (`max_per_minute` | `max_per_day`), if one does."""
    held_until: datetime | None
    rate: str
    """The caps in words: `30/minute, 10000/day`, or `no cap`."""
    empty_at: datetime | None
    """When the queue will be empty at the caps' rate; None when nothing is pending or there is no cap."""


def empty_after(pending: int, caps: SendCaps, used_minute: int, used_day: int) -> timedelta | None:
    """How long sending `pending` mails takes at the caps' rate, given the slots already used in each window;
    None without a cap (the rate is then the backend's)."""
    if not caps.active:
        return None
    if pending <= 0:
        return timedelta(0)

    def paced(count: int, already: int) -> timedelta:
        """Time to send `count` at the minute cap, starting with `already` slots of the minute used."""
        if not caps.per_minute:
            return timedelta(0)
        free_now = max(0, caps.per_minute - already)
        if count <= free_now:
            return timedelta(0)
        return MINUTE * math.ceil((count - free_now) / caps.per_minute)

    if not caps.per_day:
        return paced(pending, used_minute)
    free_today = max(0, caps.per_day - used_day)
    if pending <= free_today:
        return paced(pending, used_minute)
    # The rest goes out one full day allowance per 24 hours as the window slides; the last one at the minute rate.
    rest = pending - free_today
    days = math.ceil(rest / caps.per_day)
    last = rest - (days - 1) * caps.per_day
    return DAY * days + paced(last, 0)


def mail_status(engine: Engine, config: Config, now: datetime) -> MailStatus:
    """Count the outbox and the send slots at `now` (naive UTC)."""
    caps = SendCaps.from_config(config.mail)
    midnight = datetime(now.year, now.month, now.day)
    with engine.connect() as conn:
        by_kind = {
            kind: int(count)
            for kind, count in conn.execute(
                sa.select(outbox.c.kind, sa.func.count()).where(outbox.c.status == "pending").group_by(outbox.c.kind)
            )
        }
        sent_today = conn.execute(
            sa.select(sa.func.count()).where(outbox.c.status == "sent", outbox.c.sent_at >= midnight)
        ).scalar_one()
        failed = conn.execute(sa.select(sa.func.count()).where(outbox.c.status == "failed")).scalar_one()
        windows = window_counts(conn, now)
        hold: CapHold | None = hold_now(conn, caps, now)
    total = sum(by_kind.values())
    duration = empty_after(total, caps, windows.minute, windows.day)
    empty_at: datetime | None = None
    if duration is not None and total:
        empty_at = now + duration
        if hold is not None and hold.cap == "max_per_day":
            # The day is full: its first slot frees at the hold's end, not a whole day from now.
            empty_at = hold.until + duration - DAY
    return MailStatus(
        now=now,
        pending=dict(sorted(by_kind.items())),
        pending_total=total,
        sent_today=int(sent_today),
        today=midnight.date(),
        failed=int(failed),
        max_per_minute=caps.per_minute,
        max_per_day=caps.per_day,
        sent_last_minute=windows.minute,
        sent_last_24h=windows.day,
        held_by=hold.cap if hold else None,
        held_until=hold.until if hold else None,
        rate=caps.describe(),
        empty_at=empty_at,
    )
