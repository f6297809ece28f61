"""Sending caps (`[mail] max_per_minute`, `max_per_day`): send slots counted in the store, shared by every process.

Relays cap senders (Microsoft 365: 30 messages a minute and 10,000 recipients a day per mailbox; Google Workspace:
2,000 a day), and a sender that blows through a cap gets blocked. Both caps are *sliding* windows: at most
`max_per_minute` slots in any 60 seconds and at most `max_per_day` in any 24 hours (the relays count rolling
periods too, so a fixed window would let twice the cap through around its edge).

A slot is a row of `mail_sends`, taken in the same transaction that claims the mail, after that transaction first
updated the one `mail_send_gate` row: on PostgreSQL and MariaDB that is a row lock, on SQLite the database's write
lock, so two delivering processes take turns counting and never both take the last free slot. A slot is given back
only when nothing reached the relay (the backend was unavailable, the template broke); a mail the relay refused
keeps its slot, because the relay counted it. Slots are written with or without a cap, so a cap switched on later
already knows what went out in the last 24 hours.

Time comes from a `Clock`, so tests can run minutes of pacing without waiting them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from integrator.clock import utcnow
from integrator.config import MailConfig
from integrator.store.schema import mail_send_gate, mail_sends

__all__ = [
    "DAY",
    "MINUTE",
    "CapHold",
    "Clock",
    "SendCaps",
    "SystemClock",
    "WindowCounts",
    "claim_slots",
    "hold_now",
    "prune",
    "release_slots",
    "window_counts",
]

MINUTE = timedelta(seconds=60)
DAY = timedelta(hours=24)
_GATE = "send"


class Clock(Protocol):
    """Where delivery reads the time and waits (a test passes one that only pretends to wait)."""

    def now(self) -> datetime:
        """Now, naive UTC."""

    def sleep(self, seconds: float) -> None:
        """Wait this long."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return utcnow()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class SendCaps:
    """The caps in force; 0 means no cap."""

    per_minute: int = 0
    per_day: int = 0

    @classmethod
    def from_config(cls, config: MailConfig) -> SendCaps:
        return cls(config.max_per_minute, config.max_per_day)

    @property
    def active(self) -> bool:
        return bool(self.per_minute or self.per_day)

    def describe(self) -> str:
        """`30/minute, 10000/day`, or `no cap`."""
        parts = [f"{self.per_minute}/minute"] if self.per_minute else []
        parts += [f"{self.per_day}/day"] if self.per_day else []
        return ", ".join(parts) or "no cap"


@dataclass(frozen=True)
class CapHold:
    """No slot is free: which cap holds the mail back (`max_per_minute` | `max_per_day`) and until when."""

    cap: str
    until: datetime


@dataclass(frozen=True)
class WindowCounts:
    """Slots taken in the last minute and in the last 24 hours."""

    minute: int
    day: int


def _count_since(conn: sa.Connection, since: datetime) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(mail_sends.c.sent_at > since)).scalar_one())


def window_counts(conn: sa.Connection, now: datetime) -> WindowCounts:
    """How many slots each window holds at `now`."""
    return WindowCounts(_count_since(conn, now - MINUTE), _count_since(conn, now - DAY))


def _freed_at(conn: sa.Connection, now: datetime, window: timedelta, cap: int, used: int) -> datetime:
    """When the window will hold one slot fewer than the cap: the (used - cap + 1)-th oldest slot in it leaves."""
    nth = conn.execute(
        sa.select(mail_sends.c.sent_at)
        .where(mail_sends.c.sent_at > now - window)
        .order_by(mail_sends.c.sent_at)
        .offset(used - cap)
        .limit(1)
    ).scalar()
    return (nth or now) + window


def claim_slots(
    conn: sa.Connection, caps: SendCaps, mail_ids: Iterable[int], now: datetime
) -> tuple[list[int], CapHold | None]:
    """Take a send slot at `now` for each of `mail_ids` the caps allow, in the caller's transaction; returns the
    ids granted (a prefix, in order) and, when not all were, the hold on the rest.

    Under a cap this must be the transaction's first statement: the gate row's update makes every other delivery
    wait here until this transaction ends, and only then does it count (MariaDB's snapshot starts at the count).
    """
    wanted = list(mail_ids)
    if not wanted:
        return [], None
    granted = wanted
    if caps.active:
        conn.execute(
            mail_send_gate.update().where(mail_send_gate.c.name == _GATE).values(claims=mail_send_gate.c.claims + 1)
        )
        free = len(wanted)
        for cap, window, _ in _windows(caps):
            free = min(free, max(0, cap - _count_since(conn, now - window)))
        granted = wanted[:free]
    if granted:
        conn.execute(mail_sends.insert(), [{"mail_id": i, "sent_at": now} for i in granted])
    if len(granted) == len(wanted):
        return granted, None
    return granted, _hold(conn, caps, now)


def _windows(caps: SendCaps) -> list[tuple[int, timedelta, str]]:
    """(cap, window, config key) of each cap in force."""
    both = [(caps.per_minute, MINUTE, "max_per_minute"), (caps.per_day, DAY, "max_per_day")]
    return [w for w in both if w[0]]


def _hold(conn: sa.Connection, caps: SendCaps, now: datetime) -> CapHold:
    """The hold at `now` with the windows as they are: the full window that frees a slot last."""
    holds = []
    for cap, window, name in _windows(caps):
        used = _count_since(conn, now - window)
        if used >= cap:
            holds.append(CapHold(name, _freed_at(conn, now, window, cap, used)))
    return max(holds, key=lambda h: h.until)


def hold_now(conn: sa.Connection, caps: SendCaps, now: datetime) -> CapHold | None:
    """The hold a delivery would meet at `now`, or None when a slot is free (what `mail status` shows)."""
    if not caps.active or all(_count_since(conn, now - w) < c for c, w, _ in _windows(caps)):
        return None
    return _hold(conn, caps, now)


def release_slots(conn: sa.Connection, mail_ids: Iterable[int], taken_at: datetime) -> None:
    """Give back the slots taken at `taken_at` for mails that never reached the relay."""
    ids = list(mail_ids)
    if ids:
        conn.execute(mail_sends.delete().where(mail_sends.c.mail_id.in_(ids), mail_sends.c.sent_at == taken_at))


def prune(conn: sa.Connection, now: datetime) -> None:
    """Forget slots older than the longest window."""
    conn.execute(mail_sends.delete().where(mail_sends.c.sent_at <= now - DAY))
