"""Login throttling: per login and per customer IP address, with delays that grow with each failure instead of a
lock-out (nobody can lock a customer out: a password reset is never throttled here).

An attempt is counted *before* its password is checked, by a compare-and-swap on the key's row, so parallel
wrong guesses cannot slip past the limit: of a burst, at most `free` are checked before the delays start. A
success clears the key's count; 15 quiet minutes forget it. The state lives in the store, so every `serve`
process over one store shares it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.store.schema import api_login_throttle

__all__ = ["Policy", "Throttled", "claim", "failed", "forget"]

QUIET = timedelta(minutes=15)
_CAS_TRIES = 20


@dataclass(frozen=True)
class Policy:
    """`free` attempts without delay, then 1 s, 2 s, 4 s ... between attempts, at most `max_delay` seconds."""

    free: int
    max_delay: int = 300

    def delay_after(self, attempts: int) -> float:
        """Seconds before the next attempt once `attempts` were made."""
        if attempts < self.free:
            return 0.0
        return float(min(2 ** min(attempts - self.free, 30), self.max_delay))


class Throttled(Exception):
    """Too many recent failures for a key: try again in `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def _claim_one(engine: Engine, key: str, policy: Policy, now: datetime) -> None:
    # Read, then write with one conditional statement in a transaction of its own (compare-and-swap): a write
    # that starts a transaction waits for the lock on every engine, where a read upgraded to a write would fail
    # on SQLite once another writer committed in between.
    for _ in range(_CAS_TRIES):
        with engine.connect() as conn:
            row = conn.execute(sa.select(api_login_throttle).where(api_login_throttle.c.key == key)).first()
        if row is None:
            try:
                with engine.begin() as conn:
                    conn.execute(
                        api_login_throttle.insert().values(
                            key=key,
                            failures=1,
                            next_allowed_at=now + timedelta(seconds=policy.delay_after(1)),
                            last_attempt_at=now,
                        )
                    )
                return
            except sa.exc.IntegrityError:  # a parallel attempt made the row first: count against it
                continue
        failures = 0 if row.last_attempt_at <= now - QUIET else row.failures
        if failures and row.next_allowed_at > now:
            raise Throttled(max(1, math.ceil((row.next_allowed_at - now).total_seconds())))
        with engine.begin() as conn:
            swapped = conn.execute(
                api_login_throttle.update()
                .where(
                    api_login_throttle.c.key == key,
                    api_login_throttle.c.failures == row.failures,
                    api_login_throttle.c.last_attempt_at == row.last_attempt_at,
                )
                .values(
                    failures=failures + 1,
                    next_allowed_at=now + timedelta(seconds=policy.delay_after(failures + 1)),
                    last_attempt_at=now,
                )
            ).rowcount
        if swapped == 1:
            return
    raise Throttled(1)  # the key is under heavy parallel fire: turn this one away


def claim(engine: Engine, keys: list[tuple[str, Policy]]) -> None:
    """Count one attempt against each key in turn, or raise `Throttled` at the first that must wait (the keys
    after it are not counted: put the address first, so a throttled address cannot push a login's delays up)."""
    now = utcnow()
    for key, policy in keys:
        _claim_one(engine, key, policy, now)


def forget(engine: Engine, key: str) -> None:
    """A correct password for the key: its count starts again."""
    with engine.begin() as conn:
        conn.execute(api_login_throttle.delete().where(api_login_throttle.c.key == key))


def failed(engine: Engine, keys: list[tuple[str, Policy]]) -> None:
    """The attempt failed: each key's wait runs from now (not from when the attempt was counted, which a slow
    password check may have left behind)."""
    now = utcnow()
    for key, policy in keys:
        with engine.connect() as conn:
            row = conn.execute(sa.select(api_login_throttle).where(api_login_throttle.c.key == key)).first()
        if row is None:
            continue
        wait_until = now + timedelta(seconds=policy.delay_after(row.failures))
        with engine.begin() as conn:
            conn.execute(
                api_login_throttle.update()
                .where(api_login_throttle.c.key == key, api_login_throttle.c.next_allowed_at < wait_until)
                .values(next_allowed_at=wait_until)
            )
