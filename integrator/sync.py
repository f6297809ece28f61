"""One sync run: lock → read and judge the source → plan → guard → apply → record → deliver mail.

A source that fails at any point (bad SQL, lost connection mid-read) ends the run before anything is applied,
so a broken source never removes an account.
"""

from __future__ import annotations

import gc
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
import tenacity
from sqlalchemy.engine import Engine

from integrator.config import Config
from integrator.connectors import make_connector
from integrator.connectors.base import LeaveOut
from integrator.contacts import ContactJoin
from integrator.errors import FatalSyncError, GuardRefusal, IntegratorError, StoreConnectionLost
from integrator.faults import checkpoint
from integrator.guard import check_plan
from integrator.identity import ids_of, login_function
from integrator.logs import get_logger
from integrator.reconcile import Plan, Reconciler
from integrator.rules import build_contact_engine, build_customer_engine, build_engine
from integrator.rules.reasons import DUPLICATE_EMAIL, DUPLICATE_USERNAME
from integrator.rules.tag import normalize_tag
from integrator.store.apply import Applier, ApplyResult, LoadAbandoned, loads_in_bulk
from integrator.store.db import open_store
from integrator.store.disconnect import is_disconnect, lost
from integrator.store.early_load import LoadWhileReading
from integrator.store.ledger import StoreLookups, has_live_accounts, load_live_ledger
from integrator.store.lock import SyncLock
from integrator.store.runs import (
    finish_run,
    record_quarantine,
    record_rejections,
    start_run,
)
from integrator.store.schema import run_actions
from integrator.store.staging import Staging
from integrator.store.wal import BackgroundCheckpoints

__all__ = ["SyncResult", "run_sync"]

log = get_logger("sync")

Progress = Callable[[str, int, int | None], None]
"""`progress(phase, count, total)`: how far the read or the apply has come (see `run_sync`)."""

_RENEW_EVERY = 20000


class _HeapFreeze:
    """Keeps the cyclic collector's passes short during syncs without turning it off: `gc.disable()` would stop
    collection in every thread of the process (the daemon's scheduler and mail jobs too). `gc.freeze()` instead
    leaves the objects alive when a sync starts (modules, config, engine: ~85,000 in a sync process) out of
    every later pass, while young objects are collected as usual, in every thread. (The ledger, str -> bytes,
    holds nothing the collector tracks.) Syncs running at once share one freeze: the first in freezes, the
    last out unfreezes, and neither does anything when something else had frozen objects before. Cycles that
    were already garbage when the freeze began are collected after it ends."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._running = 0
        self._froze = False

    def enter(self) -> None:
        with self._guard:
            if self._running == 0 and gc.get_freeze_count() == 0:
                gc.freeze()
                self._froze = True
            self._running += 1

    def leave(self) -> None:
        with self._guard:
            self._running -= 1
            if self._running == 0 and self._froze:
                gc.unfreeze()
                self._froze = False


_HEAP_FREEZE = _HeapFreeze()


@dataclass
class SyncResult:
    """The run summary `integrator sync` prints; `to_json()` is the pinned `--json` shape (and more)."""

    run_id: int | None
    status: str
    """ok | quarantined | refused | failed | dry_run"""
    dry_run: bool = False
    records: int = 0
    created: int = 0
    readded: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Of `unchanged`: rows recognised by their raw digest, neither converted nor judged again."""
    refreshed: int = 0
    """Of `unchanged`: accounts whose row or its reading changed but not their synced fields; only the stored
    digest was renewed, so the next run skips them again."""
    rejected: int = 0
    quarantined: int = 0
    mails_queued: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    deferred_removals: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    """Dry run only: every planned action with its reason."""
    message: str | None = None
    mail: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent reading and planning, and applying."""
    transient: bool = False
    """A failure the next run is expected to get past (the store's connection was lost); not in `--json`."""

    @property
    def exit_code(self) -> int:
        """SPEC exit codes: 0 ok, 1 failed, 3 quarantined records, 4 refused by a guard."""
        return {"ok": 0, "dry_run": 0, "quarantined": 3, "refused": 4}.get(self.status, 1)

    def to_json(self) -> dict[str, Any]:
        """Machine output for `sync --json`."""
        data = asdict(self)
        data.pop("transient")
        if not self.dry_run:
            data.pop("actions")
        return data


def _plan_actions(conn: sa.Connection, staging: Staging, plan: Plan, readd: str) -> list[dict[str, Any]]:
    st = staging.table
    actions: list[dict[str, Any]] = [
        {**ids_of(r.erp_id), "action": "remove", "login": r.login, "reason": ", ".join(r.reasons)}
        for r in plan.removals
    ]
    reasons = {
        "create": "eligible, no account yet",
        "readd": "eligible again after removal: "
        + ("closed identity reopened" if readd == "restore" else "new identity"),
        "update": "synced fields changed",
    }
    for action, erp_id, login in conn.execute(sa.select(st.c.action, st.c.erp_id, st.c.login).order_by(st.c.seq)):
        actions.append({**ids_of(erp_id), "action": action, "login": login, "reason": reasons.get(action, action)})
    actions += [{**ids_of(r.erp_id), "action": "reject", "reason": ", ".join(r.reasons)} for r in plan.rejections]
    actions += [{**ids_of(q.erp_id), "action": "quarantine", "reason": q.error} for q in plan.quarantined]
    return actions


def _result_from(plan: Plan, run_id: int | None, status: str, applied: ApplyResult | None, readds: int) -> SyncResult:
    quarantined = list(plan.quarantined) + (applied.failed if applied else [])
    return SyncResult(
        run_id=run_id,
        status=status,
        dry_run=status == "dry_run",
        records=plan.records,
        created=applied.created if applied else plan.creates,
        readded=applied.readded if applied else readds,
        updated=applied.updated if applied else plan.updates,
        removed=applied.removed if applied else (len(plan.removals) if status == "dry_run" else 0),
        unchanged=plan.unchanged + (applied.refreshed if applied else 0),
        skipped=plan.skipped,
        refreshed=applied.refreshed if applied else 0,
        rejected=plan.rejected,
        quarantined=len(quarantined),
        mails_queued=applied.mails_queued if applied else 0,
        rejected_by_reason=dict(plan.rejected_by_reason),
        deferred_removals=[
            {**ids_of(r.erp_id), "login": r.login, "reasons": ", ".join(r.reasons)} for r in plan.deferred_removals
        ],
        quarantine=[{**ids_of(q.erp_id), "origin": q.origin, "error": q.error} for q in quarantined],
        rejections=[{**ids_of(r.erp_id), "reasons": ", ".join(r.reasons)} for r in plan.rejections],
    )


def _counts(result: SyncResult) -> dict[str, int]:
    names = (
        "records",
        "created",
        "updated",
        "removed",
        "unchanged",
        "rejected",
        "quarantined",
        "mails_queued",
    )
    return {n: getattr(result, n) for n in names}


def _deliver(engine: Engine, config: Config) -> dict[str, Any] | None:
    """Deliver queued mail after the sync; a delivery problem leaves mail pending and never fails the sync."""
    from integrator.mail.delivery import deliver_pending  # here: a dry run or a failed run never loads the mail stack

    try:
        report = deliver_pending(engine, config)
    except Exception as exc:  # noqa: BLE001 - mail stays pending and is retried; the sync itself succeeded
        log.warning("mail_delivery_failed", error=f"{type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    return asdict(report) if hasattr(report, "__dataclass_fields__") else dict(report)


def run_sync(
    config: Config,
    *,
    dry_run: bool = False,
    allow_mass_removal: bool = False,
    only: str | None = None,
    trigger: str = "cli",
    engine: Engine | None = None,
    progress: Progress | None = None,
    catch_unexpected: bool = False,
) -> SyncResult:
    """Run one sync and return its summary; fatal source/store errors end as status "failed".

    `progress(phase, count, total)`, when given, is told how far the read ("read", records so far, total unknown)
    and the apply ("apply", accounts written so far, the plan's creates, updates and removals) have come, for a
    progress display.

    The store's connection lost before the apply began restarts the read and staging on a new session, at most
    `[store] reconnect_attempts` times; lost during the apply, it fails the run (the batch in flight rolled back,
    the next run goes on from what was committed). Any other error is raised after the run's row says it failed,
    or, with `catch_unexpected` (the CLI, the daemon), ends as a failed summary too: every run that started has one.
    """
    engine = engine or open_store(config.store.url)
    connector = make_connector(config.source)
    rules = build_engine(config.rules, login=config.accounts.login)
    lock = None
    if not dry_run:
        lock = SyncLock(engine, lease_seconds=config.lock.lease_seconds, wait_seconds=config.lock.wait_seconds)
        lock.acquire()
    _HEAP_FREEZE.enter()
    try:
        with engine.connect() as conn:
            run_id = None if dry_run else start_run(conn, "only" if only else trigger)
            structlog.contextvars.bind_contextvars(run_id=run_id)
            try:
                try:
                    result = _reading_again(config)(
                        _run, conn, config, connector, rules, run_id, lock, dry_run, allow_mass_removal, only,
                        progress, catch_unexpected, True,
                    )  # fmt: skip
                except LoadAbandoned as abandoned:  # nothing applied: read again, and load after the read
                    log.warning("sync_reading_again", reason=str(abandoned), attempt=2)
                    result = _reading_again(config)(
                        _run, conn, config, connector, rules, run_id, lock, dry_run, allow_mass_removal, only,
                        progress, catch_unexpected, False,
                    )  # fmt: skip
            except _ReadInterrupted as interrupted:  # on every attempt: nothing was applied
                result = _failed(conn, SyncResult(run_id=run_id, status="failed"), interrupted.lost)
            finally:
                structlog.contextvars.unbind_contextvars("run_id")
    finally:
        _HEAP_FREEZE.leave()
        if lock is not None:
            lock.release()
    if result.status in ("ok", "quarantined") and config.mail.deliver_after_sync:
        result.mail = _deliver(engine, config)
    return result


DIGEST_VERSION = 1
"""Bump when record conversion or rule semantics change, so no row is skipped on an outdated reading."""


def reading_key(config: Config) -> bytes:
    """Key of the raw-row digests: everything that decides what a raw row means and whether it is eligible."""
    source = config.source.model_dump(
        mode="json", include={"kind", "query", "preset", "preset_options", "tags_layout", "tag_separator",
                              "columns", "delimiter", "encoding", "contacts_query", "contacts_path",
                              "contact_columns", "attributes"},
    )  # fmt: skip
    reading = {"version": DIGEST_VERSION, "source": source, "rules": config.rules.model_dump(mode="json"),
               "login": config.accounts.login}  # fmt: skip
    return hashlib.blake2b(json.dumps(reading, sort_keys=True).encode(), digest_size=32).digest()


def _run(  # type: ignore[no-untyped-def]
    conn, config, connector, rules, run_id, lock, dry_run, allow_mass_removal, only, progress, catch_unexpected,
    load_while_reading,
) -> SyncResult:  # fmt: skip
    log.info("sync_started", source=connector.describe(), dry_run=dry_run, only=only)
    started = time.perf_counter()
    plan = Plan()
    loader: LoadWhileReading | None = None
    try:
        # Asked for first: a connector may start reading now, while the ledger loads.
        skip = _LateSkip()
        leave_out = None
        contacts = config.source.has_contacts
        if contacts:  # every customer row is needed: its contacts carry its fields
            join = ContactJoin(build_customer_engine(config.rules), normalize_tag(config.rules.tag), only=only)
            rules = build_contact_engine(config.rules, join.customers, login=config.accounts.login)
        elif not dry_run and not has_live_accounts(conn):
            # A first sync: an untagged customer can only be counted, so its row need not even be handed over.
            # The lock keeps it first: only a sync makes accounts live. (A dry run holds no lock.)
            leave_out = LeaveOut(normalize_tag(config.rules.tag), skip.left_out)
        digest_key = reading_key(config)
        if contacts:
            records = connector.records(only=only, digest_key=digest_key)
        else:
            records = connector.records(only=only, digest_key=digest_key, skip=skip, leave_out=leave_out)
        ledger = load_live_ledger(conn)
        conn.commit()
        if leave_out is not None and ledger:
            raise FatalSyncError("accounts became live while this sync read its source (without a lock?); run again")
        username = config.accounts.login == "username"
        staging = Staging(conn, extended=contacts or username or bool(config.source.attributes), username=username)
        conn.commit()
        applier = Applier(
            conn,
            staging,
            run_id=run_id or 0,
            readd=config.accounts.readd,
            removal_notice=config.mail.send_removal_notice,
            batch_size=config.store.batch_size,
        )
        lookups = StoreLookups(conn.engine, ledger)
        if load_while_reading and not dry_run and not ledger:
            staging.loader = loader = LoadWhileReading(applier, lookups)
        reconciler = Reconciler(
            ledger,
            rules,
            staging.stage,
            lookups=lookups,
            scope=only,
            tag=None if contacts else normalize_tag(config.rules.tag),
            login=login_function(config.accounts.login),
            duplicate_reason=DUPLICATE_USERNAME if username else DUPLICATE_EMAIL,
            on_eligible=join.contact_eligible if contacts else None,
        )
        plan = reconciler.plan
        if contacts:
            join.read_customers(records, plan)
            records = join.records(connector.contacts(digest_key=digest_key), skip=skip)
        skip.skip = reconciler.skip if progress is None else _counting(reconciler, progress)
        skip.count_left_out = reconciler.left_out
        for count, record in enumerate(records, 1):
            reconciler.feed(record)
            if count % _RENEW_EVERY == 0:
                if progress is not None:
                    progress("read", plan.records, None)
                checkpoint("sync.read")
                if lock is not None:
                    lock.renew()
        staging.flush()
        if loader is not None:
            loader.wait()
        early = applier.loading  # the bulk load began during the read: its transaction stays open until it ends
        bulk_load = early or (not dry_run and loads_in_bulk(conn, staging.creates))  # a bulk load mints no ids
        if not dry_run and staging.creates and not bulk_load:
            staging.start_minting()  # the new ids are made while the plan is settled and applied
        plan = reconciler.finish()
        if contacts:
            join.report_without_contact(plan)
        staging.drop_erp_ids(sorted(plan.unstaged))
        if early:
            applier.unload(sorted(plan.unstaged))
        else:
            conn.commit()
        applier.bulk_load = bulk_load
        writes = plan.creates + plan.updates + len(plan.removals)
        # Each is a pass over the staging table: none at all when there is nothing of its kind.
        if plan.updates:
            applier.resolve_update_ids()
        readds = applier.mark_readds(plan.readds) if plan.readds else 0
        read_seconds = time.perf_counter() - started
        check_plan(plan, config.safety, allow_mass_removal=allow_mass_removal, scoped=only is not None)
    except GuardRefusal as refusal:
        _reset(conn)
        result = _result_from(plan, run_id, "refused", None, 0)
        result.created = result.updated = 0  # counts of what the run wrote: nothing of a refused run is applied
        result.refused, result.message = refusal.details, str(refusal)
        log.warning("sync_refused", reason=str(refusal), refused=len(refusal.details))
        if run_id is not None:
            _record_refusal(conn, run_id, refusal)
            finish_run(conn, run_id, "refused", _counts(result), _summary(result), error=str(refusal))
        return result
    except BaseException as exc:
        if loader is not None:
            loader.stop()
        if isinstance(exc, LoadAbandoned):
            _reset(conn)
            raise
        failure = _store_lost(conn, "the read", exc)
        if failure is not None:  # nothing applied yet: `run_sync` reads again on a new session
            _reset(conn)
            raise _ReadInterrupted(failure) from exc
        result = _failed(conn, _nothing_applied(plan, run_id), exc)
        if _summarised(exc, catch_unexpected):
            return result
        raise
    if dry_run:
        result = _result_from(plan, None, "dry_run", None, readds)
        result.actions = _plan_actions(conn, staging, plan, config.accounts.readd)
        log.info("sync_planned", **_counts(result))
        return result
    try:
        checkpoint("sync.before_apply")
        with BackgroundCheckpoints(conn) as wal:
            applier.heartbeat = lambda: (_heartbeat(applier, lock, progress, writes), wal.kick())
            applier.remove(plan.removals)
            if plan.updates:
                applier.update()
            if plan.creates:
                applier.create()
        record_rejections(conn, run_id, plan.rejections)
        applied = applier.result
        record_quarantine(conn, run_id, list(plan.quarantined) + applied.failed, full_run=only is None, only=only)
    except BaseException as exc:
        if isinstance(exc, LoadAbandoned):
            _reset(conn)
            raise
        # The batch in flight rolled back whole; what earlier batches committed stays, and the next run goes on.
        failure = _store_lost(conn, "the apply", exc) or exc
        result = _failed(conn, _result_from(plan, run_id, "failed", applier.result, readds), failure)
        if _summarised(failure, catch_unexpected):
            return result
        raise
    quarantined = bool(plan.quarantined or applied.failed)
    result = _result_from(plan, run_id, "quarantined" if quarantined else "ok", applied, readds)
    checkpoint("sync.before_finish")
    result.timings = {"read": round(read_seconds, 3), "apply": round(time.perf_counter() - started - read_seconds, 3)}
    try:
        finish_run(conn, run_id, result.status, _counts(result), _summary(result))
    except Exception as exc:  # the store out of reach even on a new session: the next run marks this one interrupted
        if not _summarised(exc, catch_unexpected):
            raise
        return _failed(conn, result, exc)
    log.info("sync_finished", status=result.status, **_counts(result), **result.timings)
    return result


class _LateSkip:
    """The reconciler's `skip` (and its count of rows left out), handed to the connector before the reconciler
    exists (it needs the ledger)."""

    __slots__ = ("count_left_out", "skip")

    def __init__(self) -> None:
        self.skip: Callable[[str, str, frozenset[str]], bool] = lambda erp_id, digest, tags: False
        self.count_left_out: Callable[[int], None] = _too_early

    def __call__(self, erp_id: str, digest: str, tags: frozenset[str]) -> bool:
        return self.skip(erp_id, digest, tags)

    def left_out(self, count: int) -> None:
        self.count_left_out(count)


def _too_early(count: int) -> None:
    raise RuntimeError(f"{count} rows were left out before the sync could count them")


def _counting(reconciler: Reconciler, progress: Progress) -> Callable[..., bool]:
    """`reconciler.skip`, reporting progress every few thousand rows (skipped rows never reach the loop)."""
    skip, plan = reconciler.skip, reconciler.plan

    def counting_skip(erp_id: str, digest: str, tags: frozenset[str]) -> bool:
        if plan.records % 5000 == 0:
            progress("read", plan.records, None)
        return skip(erp_id, digest, tags)

    return counting_skip


def _heartbeat(applier: Applier, lock: SyncLock | None, progress: Progress | None, writes: int) -> None:
    """After every apply transaction: renew the lock, report how many accounts of `writes` are written."""
    if lock is not None:
        lock.renew()
    if progress is not None:
        done = applier.result
        progress("apply", min(done.created + done.updated + done.refreshed + done.removed, writes), writes)


class _ReadInterrupted(Exception):
    """The store's connection was lost before anything was applied (`lost` says where): safe to read again."""

    def __init__(self, lost: StoreConnectionLost) -> None:
        super().__init__(str(lost))
        self.lost = lost


def _reading_again(config: Config) -> tenacity.Retrying:
    """Calls `_run` again while it is interrupted before its apply: the read and staging start over on a new
    session (the staging tables went with the old one), at most `[store] reconnect_attempts` times, after 1, 2,
    4 … s (at most 30), time for a failover to complete."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("sync_reading_again", reason=str(error), attempt=state.attempt_number + 1,
                    wait_seconds=round(state.upcoming_sleep, 1))  # fmt: skip

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(1 + config.store.reconnect_attempts),
        wait=tenacity.wait_exponential(max=30),
        retry=tenacity.retry_if_exception_type(_ReadInterrupted),
        before_sleep=before_sleep,
        reraise=True,
    )


def _store_lost(conn: sa.Connection, step: str, exc: BaseException) -> StoreConnectionLost | None:
    """`exc` as the store's connection lost during `step`, or None when it is something else. Once the run's
    connection is known lost, any error is taken for that: a statement on a new session fails misleadingly
    (the staging tables are not there)."""
    if isinstance(exc, StoreConnectionLost):
        return exc
    if is_disconnect(exc) or (isinstance(exc, Exception) and conn.invalidated):
        return lost(step, exc)
    return None


def _reset(conn: sa.Connection) -> None:
    """End the run's transaction; on a lost connection SQLAlchemy only marks it lost, and its next statement
    runs on a new session."""
    try:
        conn.rollback()
    except sa.exc.DBAPIError as exc:
        if not is_disconnect(exc):
            raise


def _summarised(exc: BaseException, catch_unexpected: bool) -> bool:
    """Whether a run failing with `exc` returns its summary (else `exc` is raised): a source or store failure
    always does; any other error when the caller asked for it."""
    return isinstance(exc, FatalSyncError) or (catch_unexpected and isinstance(exc, Exception))


def _nothing_applied(plan: Plan, run_id: int | None) -> SyncResult:
    result = _result_from(plan, run_id, "failed", None, 0)
    result.created = result.updated = result.removed = 0
    return result


def _failed(conn: sa.Connection, result: SyncResult, exc: BaseException) -> SyncResult:
    """`result` as a failed run's summary, `exc` its message; the run's row says so (on a new session when the
    run's own is gone, and not at all when the store is out of reach: the next run marks it interrupted)."""
    _reset(conn)
    expected = isinstance(exc, IntegratorError)
    result.status = "failed"
    result.message = str(exc) if expected else f"unexpected {type(exc).__name__}: {exc}"
    result.transient = isinstance(exc, StoreConnectionLost)
    if result.transient:
        log.error("sync_failed", error=result.message, step=exc.step, **_counts(result))  # type: ignore[attr-defined]
    elif expected:
        log.error("sync_failed", error=result.message)
    else:
        log.error("sync_failed", error=result.message, exc_info=exc)
    if result.run_id is not None:
        try:
            finish_run(conn, result.run_id, "failed", _counts(result), _summary(result), error=result.message)
        except Exception as error:  # noqa: BLE001 - the summary stands; the run's row stays "running" for now
            log.error("run_not_recorded", run_id=result.run_id, error=f"{type(error).__name__}: {error}")
    return result


def _summary(result: SyncResult) -> dict[str, Any]:
    return {
        "readded": result.readded,
        "rejected_by_reason": result.rejected_by_reason,
        "deferred_removals": result.deferred_removals,
        "refused": len(result.refused),
        "message": result.message,
    }


def _record_refusal(conn: sa.Connection, run_id: int, refusal: GuardRefusal) -> None:
    rows = [
        {"run_id": run_id, "erp_id": d["erp_id"], "contact_id": d.get("contact_id"), "account_id": d["account_id"],
         "action": "refused",
         "reason": f"removal refused by the deletion guard ({d['reasons']})"}
        for d in refusal.details
    ]  # fmt: skip
    for start in range(0, len(rows), 5000):
        conn.execute(run_actions.insert(), rows[start : start + 5000])
    conn.commit()
