"""Delivering the outbox: every due pending mail, one backend session per batch, never lost, never doubled.

Per mail, in this order:

1. Decide whether it should still go out. It is *cancelled* (status `cancelled`, the reason in `last_error`)
   when its account was removed (except the `account_removed` notice itself), when the account's login is no
   longer the address it was queued for, when an activation finds the account already active, or when a newer
   pending mail of the same credential kind supersedes it.
2. Mint the secret it carries (activation, password reset) and COMMIT its hash. The plaintext exists only in
   memory and in the message.
3. Hand the message to the backend; transient failures (connection refused, timeouts, 4xx) are retried with
   tenacity a few times within the batch.
4. Right after the server accepts: one transaction marks the row `sent` and revokes the account's older
   secrets, so only the newest secret works. A `sent` row is never selected again.

On a transient failure of this mail (a 4xx for it, the connection dropped while sending it) the mail stays
`pending` with `attempts + 1` and `next_attempt_at` pushed back exponentially; after `[mail] max_attempts` it
becomes `failed` (listed by `mail list --failed`, made pending again by `mail retry`). A 5xx for a recipient fails
only that mail. When the backend itself is unavailable (server down, connection refused, TLS or login failing,
still so after the in-batch retries), the batch stops: every mail stays pending and due, none is charged an
attempt, because an outage is not the mail's fault and must not turn a queue of good mail into failed mail; the
report carries the error and `pending_left`. A secret minted for a mail that did not go out is revoked at once.

Every transaction here is short and safe to repeat, so a store session lost under one (a failover, a session
ended by the server) only means doing it again on a new session; a second loss in a row stops the batch with
`StoreConnectionLost`, and the mail it was at stays pending.

The one unavoidable window: a crash (or the store out of reach even on a new session) after the server answered
250 to the message but before step 4 committed. The row is still `pending`, so the next delivery sends the mail
again with a new secret. The customer then has two mails and only the newer link or password works (the older
secret is revoked when the newer mail is recorded). Any other crash point loses nothing and sends nothing twice:
before the send the mail is simply still pending, after the record it is sent. Deliveries are serialised by a
lease lock named `mail`.
"""

from __future__ import annotations

import json
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jinja2
import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import Engine

from integrator.clock import utcnow
from integrator.config import Config
from integrator.errors import LockBusy
from integrator.faults import checkpoint
from integrator.logs import get_logger
from integrator.mail import secrets
from integrator.mail.backends import MailBackend, make_backend
from integrator.mail.caps import CapHold, Clock, SendCaps, SystemClock, claim_slots, prune, release_slots
from integrator.mail.compose import compose, secret_plan
from integrator.mail.errors import BackendUnavailable, PermanentDeliveryError, TransientDeliveryError
from integrator.mail.outbox import CREDENTIAL_KINDS, count_pending
from integrator.mail.templates import make_environment
from integrator.store.db import write_lock_now
from integrator.store.disconnect import HeldSession
from integrator.store.lock import SyncLock
from integrator.store.schema import Timestamp, accounts, mail_sends, outbox

__all__ = ["DeliveryReport", "RetrySettings", "deliver_pending"]

log = get_logger("mail.delivery")

_PAGE = 500
_LOCK_NAME = "mail"
_STEP = "mail delivery"
"""The step a lost store connection names (`StoreConnectionLost`)."""
_SYNC_ACTOR = "sync"  # integrator.store.apply.SYNC_ACTOR (not imported: the mail stack needs none of the apply)

_PRIORITY: tuple[tuple[str, sa.ColumnElement[bool]], ...] = (
    ("first activations", sa.and_(outbox.c.kind == "activation", outbox.c.actor == _SYNC_ACTOR)),
    ("resets and login changes", outbox.c.kind.in_(("password_reset", "login_changed"))),
    ("resends and reminders", sa.and_(outbox.c.kind == "activation", outbox.c.actor != _SYNC_ACTOR)),
    ("other", outbox.c.kind.not_in(("activation", "password_reset", "login_changed"))),
)
"""The order mail goes out in, oldest first within each class: when a cap makes a go-live take days, the
activations a sync queued go first, then the resets and login changes customers need now, then resends and bulk
invites (an activation queued by a person), then the rest (removal notices)."""


@dataclass(frozen=True)
class RetrySettings:
    """Retries within one batch (tenacity) and the backoff of a mail left pending for a later batch."""

    attempts: int = 3
    """Tries per mail in one batch, the first included."""
    wait_initial: float = 1.0
    """Seconds before the first retry; doubles per retry."""
    wait_max: float = 10.0
    backoff_base: timedelta = timedelta(minutes=1)
    """Delay before a deferred mail is due again, doubled per failed attempt."""
    backoff_max: timedelta = timedelta(hours=1)

    def backoff(self, attempts: int) -> timedelta:
        """How long a mail that failed `attempts` times waits before it is due again."""
        return min(self.backoff_base * (2 ** max(0, attempts - 1)), self.backoff_max)


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery did; `pending_left` counts every pending mail afterwards (due or deferred)."""

    sent: int = 0
    failed: int = 0
    retry_later: int = 0
    cancelled: int = 0
    pending_left: int = 0
    failed_ids: tuple[int, ...] = ()
    backend_error: str | None = None
    """Set when the backend was unavailable and the batch stopped early (everything left stays pending)."""
    held_by: str | None = None
    """`max_per_minute` or `max_per_day` when a sending cap stopped the delivery (the rest stays pending, untried)."""
    held_until: datetime | None = None
    """When that cap frees the next slot (naive UTC)."""


@dataclass
class _Tally:
    sent: int = 0
    failed: int = 0
    retry_later: int = 0
    cancelled: int = 0
    failed_ids: list[int] = field(default_factory=list)


# Built once: a go-live delivers hundreds of thousands of mails, and building these per mail was a good share of
# its time (the compiled forms are cached by SQLAlchemy either way).
_LATER = outbox.alias("later")
_NEWER = (
    sa.select(sa.func.min(_LATER.c.id))
    .where(_LATER.c.account_id == outbox.c.account_id, _LATER.c.kind == outbox.c.kind,
           _LATER.c.status == "pending", _LATER.c.id > outbox.c.id)
    .scalar_subquery()
)  # fmt: skip
"""The next pending mail of the same kind for the same account (a newer credential mail supersedes this one)."""
_ACCOUNT_PREFIX = "account__"
_SELECT_MAIL = (
    sa.select(outbox, _NEWER.label("newer_id"), *(c.label(_ACCOUNT_PREFIX + c.name) for c in accounts.c))
    .select_from(outbox.outerjoin(accounts, accounts.c.id == outbox.c.account_id))
    .where(outbox.c.id == sa.bindparam("b_id"), outbox.c.status == "pending")
)
"""A pending mail with its account (one statement: a go-live reads hundreds of thousands)."""


_ACCOUNT_LABELS = tuple((c.name, _ACCOUNT_PREFIX + c.name) for c in accounts.c)
"""(column, its label in `_SELECT_MAIL`) of each account column, made once rather than per mail."""


def _account_of(mail: Any) -> dict[str, Any] | None:
    """The account read with a mail by `_SELECT_MAIL` (None when it no longer exists)."""
    row = mail._mapping
    if row[_ACCOUNT_PREFIX + "id"] is None:
        return None
    return {name: row[label] for name, label in _ACCOUNT_LABELS}


_MARK_SENT = (
    outbox.update()
    .where(outbox.c.id == sa.bindparam("b_id"), outbox.c.status == "pending")
    .values(status="sent", sent_at=sa.bindparam("b_now", type_=Timestamp),
            attempts=sa.bindparam("b_attempts", type_=sa.Integer), last_error=None, next_attempt_at=None)
)  # fmt: skip
_LEDGER_FLUSH = 200
"""Without a cap, send slots are written to the ledger this many at a time (they only inform a cap set later)."""


def _activated_since_login_change(mail: Any, account: Any) -> bool:
    """An activation queued for a login change (it carries `old_login`) whose account is active by now."""
    if mail.kind != "activation" or account is None or account["status"] != "active" or not mail.context:
        return False
    return bool(json.loads(mail.context).get("old_login"))


def _due_mail(session: HeldSession, *, limit: int | None, ignore_backoff: bool) -> Iterator[tuple[int, str]]:
    """(id, account id) of the due pending mail in `_PRIORITY` order, oldest first within a class, read page by page
    (the outbox may hold a million; each class is a walk of the (status, id) index, so no page sorts the whole
    queue)."""
    served, now = 0, utcnow()
    for _, in_class in _PRIORITY:
        last = 0
        while limit is None or served < limit:
            query = sa.select(outbox.c.id, outbox.c.account_id).where(
                outbox.c.status == "pending", outbox.c.id > last, in_class
            )
            if not ignore_backoff:
                query = query.where(sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now))
            page_size = _PAGE if limit is None else min(_PAGE, limit - served)
            page = query.order_by(outbox.c.id).limit(page_size)
            rows = session.run(_STEP, lambda conn, page=page: [tuple(row) for row in conn.execute(page)])
            if not rows:
                break
            for row in rows:
                yield row
                served += 1
            last = rows[-1][0]


class _Lanes:
    """The due mail dealt to several sending threads, one queue each, by account: all mail of one account goes
    through one thread in queue order, so two of its credential mails are never in flight at once (recording one
    revokes the account's other secrets, which must be the older ones)."""

    def __init__(self, count: int, stop: threading.Event) -> None:
        self.queues: list[queue.Queue[int | None]] = [queue.Queue(maxsize=_PAGE) for _ in range(count)]
        self.stop = stop

    def lane(self, index: int) -> Iterator[int]:
        """The ids dealt to thread `index`, until the end of the due mail or until the delivery stops."""
        lane = self.queues[index]
        while True:
            try:
                item = lane.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    return
                continue
            if item is None:
                return
            yield item

    def deal(self, due: Iterator[tuple[int, str]]) -> None:
        """Deal every due mail to its account's lane, then end each lane; stops early once the delivery stops."""
        for mail_id, account_id in due:
            if not self._put(self.queues[zlib.crc32(account_id.encode()) % len(self.queues)], mail_id):
                return
        for lane in self.queues:
            self._put(lane, None)

    def _put(self, lane: queue.Queue[int | None], item: int | None) -> bool:
        while not self.stop.is_set():
            try:
                lane.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


class _SharedLock:
    """The delivery's lease, renewed by whichever sending thread comes first (one renewal at a time)."""

    def __init__(self, lock: SyncLock) -> None:
        self._lock = lock
        self._turn = threading.Lock()

    def renew(self) -> None:
        with self._turn:
            self._lock.renew()


class _Batch:
    """One delivery run over the due mails, with one backend session."""

    def __init__(
        self, engine: Engine, config: Config, backend: MailBackend, retry: RetrySettings, clock: Clock
    ) -> None:
        self.engine = engine
        self.config = config
        self.backend = backend
        self.retry = retry
        self.clock = clock
        self.caps = SendCaps.from_config(config.mail)
        self.env: jinja2.Environment = make_environment(config.mail.templates_dir)
        self.tally = _Tally()
        self._slot_at: datetime | None = None
        """When the current mail's send slot was taken (to give it back if nothing reached the relay)."""
        self._unledgered: list[dict[str, Any]] = []
        """Slots of mails sent without a cap, not yet in the ledger."""
        self._retrying = self._make_retrying()
        self.session = HeldSession(engine)
        """Every transaction of the delivery runs on this one connection (a go-live makes hundreds of thousands)."""

    def flush_ledger(self, conn: sa.Connection) -> None:
        """Write the slots of the mails sent without a cap (so a cap switched on later counts them)."""
        if self._unledgered:
            conn.execute(mail_sends.insert(), self._unledgered)
            self._unledgered = []

    # -- one mail ----------------------------------------------------------------------------------------
    @staticmethod
    def _cancel_reason(mail: Any, account: Any) -> str | None:
        if account is None:
            return "account not found"
        if mail.kind != "account_removed":
            if account["status"] == "removed":
                return "account removed"
            if (account["email"] or account["login"]) != mail.recipient:  # the e-mail when logins are usernames
                return "the account's login changed since this mail was queued"
        if mail.kind == "activation" and account["status"] == "active":
            return "account already activated"
        if mail.kind in CREDENTIAL_KINDS and mail.newer_id is not None:
            return f"superseded by mail #{mail.newer_id}"
        return None

    def _claim(self, conn: sa.Connection, mail_id: int) -> tuple[Any, Any, Any, str | None] | None:
        """(mail, account, secret, why cancelled) of a pending mail: either cancelled now, with the reason, or its
        secret (if its kind carries one) issued; None when the mail is no longer pending."""
        mail = conn.execute(_SELECT_MAIL, {"b_id": mail_id}).first()
        if mail is None:
            return None
        account = _account_of(mail)
        if _activated_since_login_change(mail, account):
            # Queued while the account was pending, for its new login; the customer activated (with the link
            # sent to the old address) before it went out: tell them the new login instead of cancelling.
            conn.execute(outbox.update().where(outbox.c.id == mail_id).values(kind="login_changed"))
            mail = conn.execute(_SELECT_MAIL, {"b_id": mail_id}).first()
        reason = self._cancel_reason(mail, account)
        if reason is not None:
            conn.execute(outbox.update().where(outbox.c.id == mail_id).values(status="cancelled", last_error=reason))
            return mail, account, None, reason
        plan = secret_plan(mail.kind, self.config)
        secret = None
        if plan is not None:
            now = utcnow()
            secret = secrets.issue(
                conn, mail.account_id, plan.kind, now=now, expires_at=now + timedelta(hours=plan.valid_hours)
            )
        return mail, account, secret, None

    def _claim_with_slot(self, conn: sa.Connection, mail_id: int) -> CapHold | tuple[Any, Any, Any, str | None] | None:
        """`_claim` after taking a send slot (first, so concurrent deliveries take turns at the gate); the hold
        when a cap has no slot free (nothing else done: the mail stays pending, untried)."""
        write_lock_now(conn)  # a second sending thread or the portal may write between our reads and writes
        if not self.caps.active:  # no slot to take first: the ledger gets the sent ones in bulk (`_record_sent`)
            return self._claim(conn, mail_id)
        now = self.clock.now()
        granted, hold = claim_slots(conn, self.caps, [mail_id], now)
        if not granted:
            assert hold is not None
            return hold
        claimed = self._claim(conn, mail_id)
        if claimed is None or claimed[3] is not None:  # gone, or cancelled: it sends nothing
            release_slots(conn, [mail_id], now)
        else:
            self._slot_at = now
        return claimed

    def deliver(self, mail_id: int) -> CapHold | None:
        """Deliver one mail, or return the cap's hold when no send slot is free (the mail untouched); raises
        `BackendUnavailable` when the backend cannot take any mail right now, and `StoreConnectionLost` when the
        store's connection is lost twice in a row (the mail stays pending)."""
        # Nothing has left the process yet: a connection lost under this transaction only means doing it again.
        self._slot_at = None
        claimed = self.session.run(_STEP, lambda conn: self._claim_with_slot(conn, mail_id))
        if isinstance(claimed, CapHold):
            return claimed
        if claimed is None:  # sent, retried or cancelled meanwhile
            return None
        mail, account, secret, reason = claimed
        if reason is not None:
            self.tally.cancelled += 1
            log.info("mail_cancelled", mail_id=mail_id, kind=mail.kind, reason=reason)
            return None
        # The secret's hash is committed: from here on the plaintext may leave the process.
        checkpoint("mail.after_secret")
        try:
            outgoing = compose(self.config, self.env, mail=mail._mapping, account=account, secret=secret)
        except Exception as exc:  # noqa: BLE001 - a broken template defers this mail; the batch goes on
            error = f"template error: {type(exc).__name__}: {exc}"
            self._failed_attempt(mail, secret, error, permanent=False, slot_used=False)
            return None
        try:
            self._send(outgoing)
        except PermanentDeliveryError as exc:
            self._failed_attempt(mail, secret, str(exc), permanent=True)
            return None
        except BackendUnavailable as exc:
            self._not_tried(mail, secret, str(exc))
            raise
        except TransientDeliveryError as exc:
            self._failed_attempt(mail, secret, str(exc), permanent=False)
            return None
        except Exception as exc:  # noqa: BLE001 - one poison mail must not stop every later batch
            self.backend.close()  # the session may be mid-command: start the next mail on a fresh one
            self._failed_attempt(mail, secret, f"unexpected {type(exc).__name__}: {exc}", permanent=False)
            return None
        checkpoint("mail.after_send")
        self._record_sent(mail, secret)
        checkpoint("mail.after_record")
        return None

    def _send(self, outgoing: Any) -> None:
        """Send, retrying transient failures within the batch. The first try goes straight to the backend: the
        retry machinery costs a go-live's every mail more than the backend's own work, and is needed by few."""
        try:
            self.backend.send(outgoing)
        except TransientDeliveryError as exc:
            failed_first: list[TransientDeliveryError] = [exc]

            def tried_once_already(outgoing: Any) -> None:  # tenacity's first attempt is the one just made
                if failed_first:
                    raise failed_first.pop()
                self.backend.send(outgoing)

            self._retrying(tried_once_already, outgoing)

    def _make_retrying(self) -> tenacity.Retrying:
        """The in-batch retry of a send, built once per batch (tenacity copies it per call)."""

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            mail_id = state.args[0].mail_id if state.args else None
            log.info("mail_send_retry", mail_id=mail_id, attempt=state.attempt_number, error=str(error))

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=tenacity.wait_exponential(multiplier=self.retry.wait_initial, max=self.retry.wait_max),
            retry=tenacity.retry_if_exception_type(TransientDeliveryError),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _record_sent(self, mail: Any, secret: secrets.IssuedSecret | None) -> None:
        now = utcnow()

        if not self.caps.active:
            self._unledgered.append({"mail_id": mail.id, "sent_at": self.clock.now()})
        pending_slots = list(self._unledgered) if len(self._unledgered) >= _LEDGER_FLUSH else []

        def record(conn: sa.Connection) -> None:
            conn.execute(_MARK_SENT, {"b_id": mail.id, "b_now": now, "b_attempts": mail.attempts + 1})
            if secret is not None:
                secrets.revoke_others(conn, mail.account_id, keep_id=secret.id, now=now)
            if pending_slots:
                conn.execute(mail_sends.insert(), pending_slots)

        # The server took the mail: a lost session must not leave it pending (it would go out again), so the record
        # is written on a new one. Only a second loss (or a crash) leaves the window the module docstring names.
        self.session.run("recording a sent mail", record)
        if pending_slots:
            self._unledgered = self._unledgered[len(pending_slots) :]
        self.tally.sent += 1
        log.info("mail_sent", mail_id=mail.id, kind=mail.kind, recipient=mail.recipient)

    def _failed_attempt(
        self, mail: Any, secret: secrets.IssuedSecret | None, error: str, *, permanent: bool, slot_used: bool = True
    ) -> None:
        """Charge the mail an attempt; its send slot is kept when the relay saw the message (it counted it)."""
        attempts = mail.attempts + 1
        now = utcnow()
        give_up = permanent or attempts >= self.config.mail.max_attempts
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000]}
        if give_up:
            values.update(status="failed", next_attempt_at=None)
        else:
            values["next_attempt_at"] = now + self.retry.backoff(attempts)

        def record(conn: sa.Connection) -> None:
            conn.execute(outbox.update().where(outbox.c.id == mail.id, outbox.c.status == "pending").values(**values))
            if secret is not None:
                secrets.revoke(conn, secret.id, now=now)
            if not slot_used and self._slot_at is not None:
                release_slots(conn, [mail.id], self._slot_at)

        self.session.run(_STEP, record)
        if give_up:
            self.tally.failed += 1
            self.tally.failed_ids.append(mail.id)
            log.warning("mail_failed", mail_id=mail.id, kind=mail.kind, attempts=attempts, error=error)
        else:
            self.tally.retry_later += 1
            log.info("mail_deferred", mail_id=mail.id, kind=mail.kind, attempts=attempts, error=error,
                     next_attempt_at=values["next_attempt_at"].isoformat())  # fmt: skip

    def _not_tried(self, mail: Any, secret: secrets.IssuedSecret | None, error: str) -> None:
        """The backend could not take any mail: note why on the row, charge no attempt, revoke the secret."""
        now = utcnow()

        def record(conn: sa.Connection) -> None:
            conn.execute(
                outbox.update()
                .where(outbox.c.id == mail.id, outbox.c.status == "pending")
                .values(last_error=error[:2000])
            )
            if secret is not None:
                secrets.revoke(conn, secret.id, now=now)
            if self._slot_at is not None:  # nothing reached the relay: the slot is free again
                release_slots(conn, [mail.id], self._slot_at)

        self.session.run(_STEP, record)
        self.tally.retry_later += 1


def _deliver_paced(
    batch: _Batch, mail_id: int, lock: _SharedLock, *, pace: bool, stop: threading.Event
) -> CapHold | None:
    """Deliver one mail; with `pace`, wait out holds of the minute cap (the hold of the day cap is returned).
    A mail whose wait ends after another sending thread stopped the delivery stays pending, untried."""
    while True:
        if stop.is_set():
            return None
        hold = batch.deliver(mail_id)
        if hold is None or not pace or hold.cap != "max_per_minute":
            return hold
        batch.backend.close()  # an idle SMTP session may be dropped by the relay while we wait; reopen after
        wait = (hold.until - batch.clock.now()).total_seconds()
        log.info("mail_paced", cap=hold.cap, seconds=round(wait, 3))
        batch.clock.sleep(max(wait, 0.001))
        lock.renew()


@dataclass
class _Stop:
    """Why the delivery stopped early, set by the first sending thread that found a reason (the others then
    finish the mail they are at and stop)."""

    backend_error: str | None = None
    hold: CapHold | None = None
    event: threading.Event = field(default_factory=threading.Event)
    _turn: threading.Lock = field(default_factory=threading.Lock)

    def first(self) -> bool:
        """Stop the delivery; True for the one thread that stops it first (it says why)."""
        with self._turn:
            if self.event.is_set():
                return False
            self.event.set()
            return True


def _send_all(
    batch: _Batch, ids: Iterator[int], lock: _SharedLock, stop: _Stop, *, pace: bool, tick: Callable[[], None]
) -> None:
    """One sending loop (one backend session): take due ids until none is left or the delivery stops; any error
    (the store's connection lost twice in a row, the lock lost) stops the others too."""
    try:
        _send_each(batch, ids, lock, stop, pace=pace, tick=tick)
    except BaseException:
        stop.event.set()
        raise


def _send_each(
    batch: _Batch, ids: Iterator[int], lock: _SharedLock, stop: _Stop, *, pace: bool, tick: Callable[[], None]
) -> None:
    for mail_id in ids:
        if stop.event.is_set():
            return
        lock.renew()
        try:
            hold = _deliver_paced(batch, mail_id, lock, pace=pace, stop=stop.event)
        except BackendUnavailable as exc:
            if stop.first():
                stop.backend_error = str(exc)
                log.warning("mail_backend_unavailable", error=stop.backend_error)
            return
        if hold is not None:
            if stop.first():
                stop.hold = hold
                log.info("mail_held_by_cap", cap=hold.cap, until=hold.until.isoformat(), mail_id=mail_id)
            return
        tick()


def _nothing() -> None:
    pass


def _end_batch(batch: _Batch) -> None:
    """Quit the backend session, write the ledger's last slots and give the store connection back."""
    try:
        batch.backend.close()
        try:
            batch.session.run(_STEP, batch.flush_ledger)
        except Exception as exc:  # noqa: BLE001 - only a cap set later would miss these; never mask the error
            log.warning("mail_ledger_not_written", error=f"{type(exc).__name__}: {exc}")
    finally:
        batch.session.close()


class _Sender:
    """One sending thread over its lane; its error, if any, is kept for the delivery to raise.

    Its end is told by an event of its own, never by `Thread.join` or `is_alive`: on Python 3.11 a `join` that
    Ctrl-C interrupts marks the thread it waited for stopped while it still runs (CPython issue 90882), so the
    delivery would give back the store connection of a thread that is recording a mail the relay took, and exit
    with that mail unrecorded."""

    def __init__(
        self, batch: _Batch, ids: Iterator[int], lock: _SharedLock, stop: _Stop, pace: bool, tick: Callable[[], None]
    ) -> None:
        self.error: BaseException | None = None
        self.finished = threading.Event()
        """Set as the thread's last step: it touches its batch no more."""
        self.thread = threading.Thread(
            target=self._run, args=(batch, ids, lock, stop, pace, tick), name="mail-send", daemon=True
        )
        self.thread.start()

    def _run(
        self, batch: _Batch, ids: Iterator[int], lock: _SharedLock, stop: _Stop, pace: bool, tick: Callable[[], None]
    ) -> None:
        try:
            _send_all(batch, ids, lock, stop, pace=pace, tick=tick)
        except BaseException as exc:  # noqa: BLE001 - raised by the delivery once every thread has stopped
            self.error = exc
        finally:
            self.finished.set()

    def running(self) -> bool:
        """Whether the thread still sends (waits up to half a second for it to end)."""
        return not self.finished.wait(0.5)


def _raise_first(senders: list[_Sender]) -> None:
    """Raise the first sending thread's error (a store connection lost twice, the lock lost), as when alone; log
    the others."""
    errors = [sender.error for sender in senders if sender.error is not None]
    _log_errors(senders, skip=errors[:1])
    if errors:
        raise errors[0]


def _log_errors(senders: list[_Sender], skip: list[BaseException] | None = None) -> None:
    """Log the sending threads' errors that will not be raised (the delivery is already ending on another)."""
    for sender in senders:
        if sender.error is not None and sender.error not in (skip or []):
            log.warning("mail_sender_failed", error=f"{type(sender.error).__name__}: {sender.error}")


def _connections(config: Config, backend: MailBackend | None) -> int:
    """How many backend sessions send at once: `[mail.smtp] connections` for SMTP, else one."""
    if backend is not None or config.mail.backend != "smtp":
        return 1
    return config.mail.smtp.connections


def deliver_pending(
    engine: Engine,
    config: Config,
    *,
    limit: int | None = None,
    ignore_backoff: bool = False,
    backend: MailBackend | None = None,
    retry: RetrySettings | None = None,
    pace: bool = False,
    clock: Clock | None = None,
    progress: Callable[[], None] | None = None,
) -> DeliveryReport:
    """Deliver due pending mail (all pending with `ignore_backoff`), at most `limit`; report the counts.
    `progress()`, when given, is called once for each mail dealt with (sent, failed, deferred or cancelled), from
    the sending threads.

    Under `[mail] max_per_minute` / `max_per_day` a mail with no free send slot stops the delivery: it and the rest
    stay pending, untried, and the report says which cap holds them and until when (the next run goes on). With
    `pace`, a hold of the minute cap is waited out instead (`mail deliver` does; the daemon and a sync do not, as
    the daemon's next turn comes within its interval anyway); the day cap always stops the run.

    With `[mail.smtp] connections` above one, that many threads send at once, each on its own SMTP session and
    store connection; each account's mail goes through one of them, in order, and each mail through the same steps
    as alone. The window of the module docstring is then one mail per connection.

    Raises `LockBusy` when another delivery holds the store's mail lock.
    """
    lock = SyncLock(
        engine, name=_LOCK_NAME, lease_seconds=config.lock.lease_seconds, wait_seconds=config.lock.wait_seconds
    )
    try:
        lock.acquire()
    except LockBusy:
        raise LockBusy("another mail delivery is running on this store; its mail goes out there") from None
    clock = clock or SystemClock()
    retry = retry or RetrySettings()
    count = _connections(config, backend)
    batches: list[_Batch] = []
    listing: HeldSession | None = None
    senders: list[_Sender] = []
    stop = _Stop()
    try:
        batches += [_Batch(engine, config, backend or make_backend(config.mail), retry, clock) for _ in range(count)]
        listing = batches[0].session if count == 1 else HeldSession(engine)
        shared_lock, tick = _SharedLock(lock), progress or _nothing
        listing.run(_STEP, lambda conn: prune(conn, clock.now()))
        due = _due_mail(listing, limit=limit, ignore_backoff=ignore_backoff)
        if count == 1:
            _send_all(batches[0], (mail_id for mail_id, _ in due), shared_lock, stop, pace=pace, tick=tick)
        else:
            lanes = _Lanes(count, stop.event)
            senders += [_Sender(b, lanes.lane(n), shared_lock, stop, pace, tick) for n, b in enumerate(batches)]
            try:
                lanes.deal(due)
                while any(sender.running() for sender in senders):  # woken often, so Ctrl-C is heard at once
                    pass
            except BaseException:
                stop.event.set()  # each sending thread finishes the mail it is at, then stops
                for sender in senders:
                    sender.finished.wait()
                _log_errors(senders)
                raise
            _raise_first(senders)
    finally:
        try:
            for n, b in enumerate(batches):
                if n >= len(senders) or senders[n].finished.is_set():  # never under a thread still sending
                    _end_batch(b)
            if listing is not None:
                listing.close()
        finally:
            lock.release()
    tallies = [b.tally for b in batches]
    hold = stop.hold
    report = DeliveryReport(
        sent=sum(t.sent for t in tallies),
        failed=sum(t.failed for t in tallies),
        retry_later=sum(t.retry_later for t in tallies),
        cancelled=sum(t.cancelled for t in tallies),
        pending_left=count_pending(engine),
        failed_ids=tuple(i for t in tallies for i in t.failed_ids),
        backend_error=stop.backend_error,
        held_by=hold.cap if hold else None,
        held_until=hold.until if hold else None,
    )
    log.info("mail_delivered", sent=report.sent, failed=report.failed, retry_later=report.retry_later,
             cancelled=report.cancelled, pending_left=report.pending_left)  # fmt: skip
    return report
