"""Applying a plan: removals, then updates, then creates, each batch one transaction over accounts, their
events and the outbox — so a crash at any point leaves a state the next run converges from. The events are
also the run's record of what it changed (`history show` reads them by run id).

Creates are set-based (`INSERT … SELECT` from the staging table). A batch the database rejects is retried row
by row, and the rows that still fail are quarantined with their error while the run goes on. A lost connection
is no row's fault: the batch rolls back whole and the run ends (`StoreConnectionLost`), quarantining nothing.

What a plan means for an account in the state it is in now (which mail a login change sends, a restored identity's
status, whether a changed row changed the account) is decided by `integrator.reconcile`; this module writes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from integrator.clock import utcnow
from integrator.errors import StoreConnectionLost
from integrator.faults import checkpoint
from integrator.identity import split_key
from integrator.reconcile import (
    Quarantined,
    Removal,
    field_changes,
    login_change_mail,
    removal_mail,
    restored_status,
)
from integrator.store.db import write_lock_now
from integrator.store.schema import account_events, accounts, outbox
from integrator.store.staging import IDENTITY_FIELDS, STAGED_FIELDS, Staging

__all__ = ["ApplyResult", "Applier", "LoadAbandoned", "loads_in_bulk"]

SYNC_ACTOR = "sync"

BULK_LOAD_MIN = 100_000
"""Creates from which a first sync into an empty PostgreSQL store builds its indexes after its inserts
(`Applier._load_in_bulk`); below it, the batches' index maintenance costs little."""

_LOADED_TABLES = "(to_regclass('accounts'), to_regclass('account_events'), to_regclass('outbox'))"
"""The tables a first sync's bulk load fills, as a SQL list of their oids."""

_SECONDARY_INDEXES = f"""
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid IN {_LOADED_TABLES}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""
"""The indexes of the tables a first sync fills that no constraint (a primary key, a foreign key's target)
stands on, each with the statement that builds it again, as the store has them (names, columns, uniqueness)."""

_KEYS = f"""
SELECT quote_ident(n.nspname) || '.' || quote_ident(t.relname), quote_ident(k.conname), pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL (VALUES (CASE k.contype WHEN 'p' THEN k.conrelid WHEN 'f' THEN k.confrelid END)) AS key_of(rel)
WHERE key_of.rel IN {_LOADED_TABLES}
ORDER BY k.contype = 'p', t.relname, k.conname
"""
"""The primary keys of those tables and the foreign keys that point at them (these first, since they stand on
the keys), each as (table, name, definition), as the store has them."""


@dataclass
class ApplyResult:
    """What was written."""

    created: int = 0
    readded: int = 0
    updated: int = 0
    refreshed: int = 0
    """Rows whose digest changed but whose synced fields did not: only the digest was written."""
    removed: int = 0
    mails_queued: int = 0
    failed: list[Quarantined] = field(default_factory=list)


def loads_in_bulk(connection: sa.Connection, creates: int) -> bool:
    """Whether a run with `creates` creates fills an empty PostgreSQL store with at least `BULK_LOAD_MIN`
    accounts (a first sync): its creates are then one bulk load (`Applier._load_in_bulk`), which needs no
    minted ids."""
    if connection.dialect.name != "postgresql" or creates < BULK_LOAD_MIN:
        return False
    empty = connection.execute(sa.select(~sa.exists(sa.select(accounts.c.id)))).scalar()
    connection.commit()
    return bool(empty)


class LoadAbandoned(Exception):
    """A bulk load begun while the source was read failed, and the staged rows went with its transaction: the
    run reads again and creates the way it would without it (see `integrator.store.early_load`)."""


def _abandoned() -> None:
    raise LoadAbandoned("the store refused the first load, begun while the source was read")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"[:500]


def _readable(changes: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """An update event's changes as people read them: attributes as the objects they are, not JSON text."""
    if "attributes" in changes:
        changes["attributes"] = [json.loads(v) if v else None for v in changes["attributes"]]
    return changes


def _typed(column: sa.Column) -> Any:
    """A staged (text) column as the type of its `accounts` column."""
    target = accounts.c[column.name].type
    return sa.cast(column, target) if not isinstance(target, sa.String | sa.Text) else column


class Applier:
    """Writes one run's plan through the run's connection (which also holds the staging table)."""

    def __init__(
        self,
        connection: sa.Connection,
        staging: Staging,
        *,
        run_id: int,
        readd: str = "new_identity",
        removal_notice: bool = False,
        batch_size: int = 100_000,
        heartbeat: Callable[[], None] = lambda: None,
        bulk_load: bool = False,
    ) -> None:
        """`bulk_load`: the creates fill an empty PostgreSQL store (`loads_in_bulk`, asked once by the run)."""
        self.conn = connection
        self.staging = staging
        self.run_id = run_id
        self.readd = readd
        self.removal_notice = removal_notice
        self.batch_size = batch_size
        self.heartbeat = heartbeat
        self.bulk_load = bulk_load
        self.loading = False
        """A bulk load is begun (`begin_bulk_load`) and not finished: the tables' indexes and keys are dropped."""
        self.loaded = 0
        """The staged rows (by `seq`) a begun bulk load has inserted."""
        self._definitions: list[Any] = []
        self._keys: list[Any] = []
        self.result = ApplyResult()
        self._before_load = self.result
        self.fields: tuple[str, ...] = (*STAGED_FIELDS, *(IDENTITY_FIELDS if staging.extended else ()))
        """The account columns a staged row carries (besides login and fingerprint)."""

    # -- shared ----------------------------------------------------------------------------------------
    def _batched(self, items: Sequence[Any]) -> Iterable[Sequence[Any]]:
        for start in range(0, len(items), self.batch_size):
            yield items[start : start + self.batch_size]

    def _transaction(self, step: str, work: Callable[[], None], fallback: Callable[[], None]) -> None:
        """Run `work` as one transaction; if the database rejects it, roll back and run `fallback` (row by row).

        A lost connection is not the batch's fault, and the run's temporary staging table went with it: it ends
        the run (`StoreConnectionLost`) instead of sending good rows to quarantine."""
        # The counts stay those of committed work: a rolled-back batch (or bulk load) wrote nothing.
        counted = replace(self._before_load if self.loading else self.result)
        try:
            work()
            checkpoint("apply.before_commit")
            self.conn.commit()
        except sa.exc.DBAPIError as exc:
            self.result = counted
            self.loading = False  # the rollback brought the indexes and keys back
            self._rollback(step, exc)
            fallback()
        checkpoint("apply.after_commit")
        self.heartbeat()

    def _rollback(self, step: str, exc: sa.exc.DBAPIError) -> None:
        """Roll back a failed statement; raise `StoreConnectionLost` when the failure was a dropped connection."""
        self.conn.rollback()
        if exc.connection_invalidated:
            raise StoreConnectionLost(step, _first_line(exc)) from None

    def _quarantine(self, step: str, erp_id: str, exc: sa.exc.DBAPIError) -> None:
        self._rollback(step, exc)
        self.result.failed.append(Quarantined(erp_id, "could not apply: " + _first_line(exc)))

    # -- removals --------------------------------------------------------------------------------------
    def remove(self, removals: Sequence[Removal]) -> None:
        """Close accounts: status removed, removed_at, reason; data and history stay."""
        for batch in self._batched(removals):
            self._transaction(
                "the removals", lambda b=batch: self._remove_batch(b), lambda b=batch: self._remove_each(b)
            )

    def _remove_batch(self, batch: Sequence[Removal]) -> None:
        now = utcnow()
        result = self.conn.execute(
            accounts.update()
            .where(accounts.c.id == sa.bindparam("b_id"), accounts.c.status != "removed")
            .values(
                status="removed",
                live_login=None,
                live_erp_id=None,
                live_key=None,
                removed_at=now,
                updated_at=now,
                removed_reason=sa.bindparam("b_reason"),
            ),
            [{"b_id": r.account_id, "b_reason": ", ".join(r.reasons)} for r in batch],
        )
        self.conn.execute(
            account_events.insert(),
            [
                {
                    "account_id": r.account_id,
                    "erp_id": split_key(r.erp_id)[0],
                    "run_id": self.run_id,
                    "actor": SYNC_ACTOR,
                    "kind": "removed",
                    "changes": json.dumps({"reasons": list(r.reasons)}),
                    "at": now,
                }
                for r in batch
            ],
        )
        kind = removal_mail(self.removal_notice)
        if kind is not None:
            to = self._addresses([r.account_id for r in batch])
            self.conn.execute(
                outbox.insert(), [self._mail(r.account_id, kind, to[r.account_id], None, now) for r in batch]
            )
            self.result.mails_queued += len(batch)
        self.result.removed += result.rowcount if result.rowcount >= 0 else len(batch)

    def _remove_each(self, batch: Sequence[Removal]) -> None:
        for removal in batch:
            try:
                self._remove_batch([removal])
                self.conn.commit()
            except sa.exc.DBAPIError as exc:
                self._quarantine("the removals", removal.erp_id, exc)

    def _addresses(self, ids: Sequence[str]) -> dict[str, str]:
        """Where each account's mail goes: its e-mail when the login is a username, else its login."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            query = sa.select(accounts.c.id, sa.func.coalesce(accounts.c.email, accounts.c.login)).where(
                accounts.c.id.in_(ids[start : start + 500])
            )
            found.update(self.conn.execute(query).tuples())
        return found

    def _mail(
        self, account_id: str, kind: str, recipient: str, locale: str | None, now: datetime, **context: Any
    ) -> dict[str, Any]:
        return {
            "account_id": account_id,
            "kind": kind,
            "recipient": recipient,
            "locale": locale,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "run_id": self.run_id,
            "actor": SYNC_ACTOR,
            "context": json.dumps(context) if context else None,
        }

    # -- updates ---------------------------------------------------------------------------------------
    def update(self) -> None:
        """Apply staged updates, batch by batch; login changes first, together, so two customers may swap."""
        st = self.staging.table
        movers = (
            self.conn.execute(
                sa.select(st)
                .join(accounts, accounts.c.id == st.c.account_id)
                .where(st.c.action == "update", st.c.login != accounts.c.login)
                .order_by(st.c.seq)
            )
            .mappings()
            .all()
        )
        self.conn.commit()
        if movers:
            self._transaction(
                "the login changes", lambda: self._update_batch(movers), lambda: self._update_each(movers)
            )
        moved = {r["seq"] for r in movers}
        top = self.conn.execute(sa.select(sa.func.max(st.c.seq))).scalar() or 0
        for low in range(0, top, self.batch_size):
            query = sa.select(st).where(st.c.action == "update", st.c.seq > low, st.c.seq <= low + self.batch_size)
            batch = [r for r in self.conn.execute(query).mappings().all() if r["seq"] not in moved]
            self.conn.commit()
            if batch:
                self._transaction(
                    "the updates", lambda b=batch: self._update_batch(b), lambda b=batch: self._update_each(b)
                )

    def _current(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The accounts' state now, read in the transaction that will write them, with their rows locked: a
        customer activating meanwhile either commits before this read or waits for this transaction's commit."""
        write_lock_now(self.conn)
        found: dict[str, dict[str, Any]] = {}
        columns = [
            accounts.c.id,
            accounts.c.login,
            accounts.c.status,
            *(accounts.c[f] for f in self.fields),
        ]
        for start in range(0, len(ids), 500):
            query = sa.select(*columns).where(accounts.c.id.in_(ids[start : start + 500]))
            if self.conn.dialect.name != "sqlite":
                query = query.with_for_update()
            for row in self.conn.execute(query).mappings():
                found[row["id"]] = dict(row)
        return found

    def _update_batch(self, batch: Sequence[Any]) -> None:
        old = self._current([r["account_id"] for r in batch])
        checkpoint("apply.update_read")
        now = utcnow()
        changed: list[tuple[Any, dict[str, list[Any]]]] = []
        unchanged: list[Any] = []
        for r in batch:
            changes = field_changes(old[r["account_id"]], r, ("login", *self.fields))
            (changed.append((r, changes)) if changes else unchanged.append(r))
        if unchanged:  # the row was re-read differently, the account did not change: renew the digest only
            self.conn.execute(
                accounts.update().where(accounts.c.id == sa.bindparam("b_id")).values(fingerprint=sa.bindparam("b_fp")),
                [{"b_id": r["account_id"], "b_fp": r["fingerprint"]} for r in unchanged],
            )
            self.result.refreshed += len(unchanged)
        if not changed:
            return
        moving = [r["account_id"] for r, changes in changed if "login" in changes]
        for start in range(0, len(moving), 500):
            self.conn.execute(
                accounts.update().where(accounts.c.id.in_(moving[start : start + 500])).values(live_login=None)
            )
        fields = ("login", "fingerprint", *self.fields)
        self.conn.execute(
            accounts.update()
            .where(accounts.c.id == sa.bindparam("b_id"))
            .values(live_login=sa.bindparam("b_login"), updated_at=now, **{f: sa.bindparam("b_" + f) for f in fields}),
            [{"b_id": r["account_id"], **{"b_" + f: r[f] for f in fields}} for r, _ in changed],
        )
        events, mails = [], []
        for r, changes in changed:
            events.append(
                {
                    "account_id": r["account_id"],
                    "erp_id": r["erp_id"],
                    "run_id": self.run_id,
                    "actor": SYNC_ACTOR,
                    "kind": "updated",
                    "changes": json.dumps(_readable(changes), ensure_ascii=False),
                    "at": now,
                }
            )
            if "login" in changes or "email" in changes:  # told (or activated anew) where its mail now goes
                before = old[r["account_id"]]
                kind = login_change_mail(before["status"])
                to = r.get("email") or r["login"]
                mails.append(self._mail(r["account_id"], kind, to, r["locale"], now, old_login=before["login"]))
        self.conn.execute(account_events.insert(), events)
        if mails:
            self.conn.execute(outbox.insert(), mails)
        self.result.updated += len(events)
        self.result.mails_queued += len(mails)

    def _update_each(self, batch: Sequence[Any]) -> None:
        for row in batch:
            try:
                self._update_batch([row])
                self.conn.commit()
            except sa.exc.DBAPIError as exc:
                self._quarantine("the updates", row["erp_id"], exc)

    # -- creates ---------------------------------------------------------------------------------------
    def resolve_update_ids(self) -> None:
        """Staged updates name their customer; give them the id of its live account (set-based)."""
        st = self.staging.table
        live_id = sa.select(accounts.c.id).where(accounts.c.live_key == st.c.erp_id).scalar_subquery()
        self.conn.execute(st.update().where(st.c.action == "update").values(account_id=live_id))
        self.conn.commit()

    def mark_readds(self, erp_ids: Collection[str]) -> int:
        """The plan's re-adds (`Plan.readds`): their staged creates become `readd`; returns how many."""
        st = self.staging.table
        wanted = sorted(erp_ids)
        marked = 0
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            result = self.conn.execute(
                st.update().where(st.c.action == "create", st.c.erp_id.in_(chunk)).values(action="readd")
            )
            marked += result.rowcount
        self.conn.commit()
        return marked

    def create(self) -> None:
        """Insert new identities (and re-adds) set-based, batch by batch of staging rows."""
        if self.readd == "restore":
            self._restore_all()
        st = self.staging.table
        top = self.conn.execute(sa.select(sa.func.max(st.c.seq))).scalar() or 0
        try:
            if self.bulk_load:
                # The batches mint the ids they need if the load falls back to them. A load begun while the source
                # was read shared its transaction with the staging: the rollback took those staged rows too.
                fallback = _abandoned if self.loading else lambda: self._create_batches(top)
                self._transaction("the creates", lambda: self._load_in_bulk(top), fallback)
            else:
                self._create_batches(top)
        finally:
            self.staging.stop_minting()

    def _load_in_bulk(self, top: int) -> None:
        """A first sync's creates in one transaction that builds the indexes of the three tables it fills after
        its inserts instead of during them: PostgreSQL then sorts each index once instead of inserting into it
        row by row. Their primary keys too (and so, for that time, the foreign keys that point at them), as
        `pg_restore` does: that took 1 to 4 s off the apply of 620,790 accounts. The tables are locked until the
        commit, and a crash or an error leaves the store as empty as it was (its indexes and keys included); an
        error falls back to `_create_batches`, which commits batch by batch and quarantines the row that fails.
        A load begun while the source was read (`integrator.store.early_load`) has inserted what it loaded by
        then: this inserts the rest."""
        if not self.loading:
            self.begin_bulk_load()
        for low in range(self.loaded, top, self.batch_size):
            self._create_range(low, low + self.batch_size, store_draws_ids=True)
            self.heartbeat()
        self.loaded = max(self.loaded, top)
        for table, name, definition in reversed(self._keys):
            self.conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for _, definition in self._definitions:
            self.conn.exec_driver_sql(definition)
        self.loading = False

    def begin_bulk_load(self) -> None:
        """Begin a bulk load in the run's transaction: drop the indexes and keys of the tables it fills, to be
        built again once it has inserted everything (`_load_in_bulk`)."""
        # Waiting for a reader of these tables (the portal, a delivery) would queue every later reader behind
        # this run: better to give up at once and take the batches' way.
        self.conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        self.conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        self._definitions = self.conn.exec_driver_sql(_SECONDARY_INDEXES).all()
        self._keys = self.conn.exec_driver_sql(_KEYS).all()
        for name, _ in self._definitions:
            self.conn.exec_driver_sql(f"DROP INDEX {name}")
        for table, name, _ in self._keys:
            self.conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        self.loading = True
        self.loaded = 0
        self._before_load = replace(self.result)

    def load(self, high: int) -> None:
        """Insert the staged creates numbered up to `high` that a begun bulk load has not inserted yet."""
        for low in range(self.loaded, high, self.batch_size):
            self._create_range(low, min(low + self.batch_size, high), store_draws_ids=True)
        self.loaded = max(self.loaded, high)

    def unload(self, keys: Sequence[str]) -> None:
        """Take back what a begun bulk load inserted for the identity keys `keys` (creates that lost their login
        to a later row, `Plan.unstaged`): their mails, events and accounts, in the same transaction."""
        if not keys:
            return
        wanted = sa.select(sa.func.unnest(sa.cast(sa.literal(list(keys), sa.ARRAY(sa.Text)), sa.ARRAY(sa.Text))))
        ids = sa.select(accounts.c.id).where(accounts.c.live_key.in_(wanted.scalar_subquery()))
        mails = self.conn.execute(outbox.delete().where(outbox.c.account_id.in_(ids))).rowcount
        self.conn.execute(account_events.delete().where(account_events.c.account_id.in_(ids)))
        gone = self.conn.execute(accounts.delete().where(accounts.c.live_key.in_(wanted.scalar_subquery()))).rowcount
        self.result.created -= gone
        self.result.mails_queued -= mails

    def _create_batches(self, top: int) -> None:
        """The creates batch by batch, each batch its own transaction."""
        # Batches follow the staging order, and so the ascending order of the new ids: each batch writes
        # the right end of the id indexes, not pages all over them. Each batch's ids are written (and
        # committed) before it, so a batch that fails and is retried row by row still finds them.
        st = self.staging.table
        for low in range(0, top, self.batch_size):
            high = low + self.batch_size
            last = sa.select(sa.func.max(st.c.create_seq)).where(st.c.seq > low, st.c.seq <= high)
            self.staging.ids_through(self.conn.execute(last).scalar() or 0)
            self.conn.commit()
            self._transaction(
                "the creates",
                lambda lo=low, hi=high: self._create_range(lo, hi),
                lambda lo=low, hi=high: self._create_each(lo, hi),
            )

    def _create_range(self, low: int, high: int, *, store_draws_ids: bool = False) -> None:
        """The creates staged in (low, high]; with `store_draws_ids` (PostgreSQL) each new id is drawn by the
        store (`gen_random_uuid()`, a version 4 UUID, as `identities` draws them) instead of taken from the ids
        minted for the run: for a bulk load, whose keys are built after its inserts, their order buys nothing."""
        st, ids = self.staging.table, self.staging.new_ids
        where = sa.and_(st.c.action.in_(("create", "readd")), st.c.seq > low, st.c.seq <= high)
        erp_id = sa.func.coalesce(st.c.customer_id, st.c.erp_id) if self.staging.extended else st.c.erp_id
        copied = (*STAGED_FIELDS, *(IDENTITY_FIELDS if self.staging.extended else ()))
        recipient = sa.func.coalesce(st.c.email, st.c.login) if self.staging.extended else st.c.login
        new_id = sa.cast(sa.func.gen_random_uuid(), sa.Text) if store_draws_ids else ids.c.id
        rows = (
            sa.select(
                new_id.label("new_id"),
                erp_id.label("erp_id"),
                st.c.erp_id.label("key"),
                st.c.action,
                st.c.login,
                st.c.fingerprint,
                *(_typed(st.c[f]).label(f) for f in copied),
                recipient.label("recipient"),
            )
            .select_from(st if store_draws_ids else st.join(ids, ids.c.create_seq == st.c.create_seq))
            .where(where)
        )
        now = utcnow()
        # Counted from staging, not rowcount: drivers disagree on rowcount for INSERT … SELECT.
        if store_draws_ids:
            # A bulk load fills an empty store, so every create is new (a re-add needs a removed account). The
            # accounts' insert returns what their events and mails take: no wide materialised copy of the
            # staged rows (0.8-1.4 s against 1.0-1.7 s a batch of 100,000, in a replay).
            account = self._account_insert(rows.subquery("src"), copied, now)
            to = sa.func.coalesce(accounts.c.email, accounts.c.login) if self.staging.extended else accounts.c.login
            new = account.returning(
                accounts.c.id.label("new_id"), accounts.c.erp_id, sa.literal("create").label("action"),
                to.label("recipient"), accounts.c.locale,
            ).cte("new_accounts")  # fmt: skip
            event, mail = self._event_and_mail_inserts(new, now)
            query = sa.select(new.c.action, sa.func.count()).group_by(new.c.action)
            counts = dict(self.conn.execute(query.add_cte(event.cte("new_events"), mail.cte("new_mails"))).all())
        elif self.conn.dialect.name == "postgresql":
            # One statement: the staged rows are joined to their ids once, into a materialised CTE that three
            # data-modifying CTEs insert from and the statement's own SELECT counts (one scan of staging, one
            # round trip, instead of four of each). The CTE is held in memory (64 MB takes a batch of 100,000
            # rows; the default 4 MB spilled it to a temporary file).
            src = rows.cte("src").prefix_with("MATERIALIZED")
            account = self._account_insert(src, copied, now)
            event, mail = self._event_and_mail_inserts(src, now)
            inserts = (account.cte("new_accounts"), event.cte("new_events"), mail.cte("new_mails"))
            self.conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
            query = sa.select(src.c.action, sa.func.count()).group_by(src.c.action).add_cte(*inserts)
            counts = dict(self.conn.execute(query).all())
        else:
            counts = dict(
                self.conn.execute(sa.select(st.c.action, sa.func.count()).where(where).group_by(st.c.action)).all()
            )
            if counts:
                src = rows.subquery("src")
                for insert in (self._account_insert(src, copied, now), *self._event_and_mail_inserts(src, now)):
                    self.conn.execute(insert)
        inserted = sum(counts.values())
        self.result.created += inserted
        self.result.readded += counts.get("readd", 0)
        self.result.mails_queued += inserted

    def _account_insert(self, src: sa.FromClause, copied: Sequence[str], now: datetime) -> sa.Insert:
        """The insert of a range of creates into accounts from `src`: the staged creates with their new ids
        (`new_id`), with one column per value the insert takes."""
        literal = sa.literal
        c = src.c
        return accounts.insert().from_select(
            [
                "id", "erp_id", "login", "live_login", "live_erp_id", "live_key", "status", "blocked",
                "must_change_password", "fingerprint", *copied, "created_at", "updated_at", "created_run_id",
            ],
            sa.select(
                c.new_id, c.erp_id, c.login, c.login, c.erp_id, c.key,
                literal("pending_activation"), literal(False), literal(False), c.fingerprint,
                *(c[f] for f in copied),
                literal(now, sa.DateTime), literal(now, sa.DateTime), literal(self.run_id),
            ),
        )  # fmt: skip

    def _event_and_mail_inserts(self, src: sa.FromClause, now: datetime) -> tuple[sa.Insert, sa.Insert]:
        """The inserts of the new accounts' events and activation mails from `src`, whose rows give each one's
        `new_id`, `erp_id`, `action` (create or readd), `recipient` and `locale`."""
        literal = sa.literal
        c = src.c
        event = account_events.insert().from_select(
            ["account_id", "erp_id", "run_id", "actor", "kind", "at"],
            sa.select(
                c.new_id,
                c.erp_id,
                literal(self.run_id),
                literal(SYNC_ACTOR),
                sa.case((c.action == "readd", "readded"), else_="created"),
                literal(now, sa.DateTime),
            ),
        )
        mail = outbox.insert().from_select(
            ["account_id", "kind", "recipient", "locale", "status", "attempts", "created_at", "run_id", "actor"],
            sa.select(
                c.new_id,
                literal("activation"),
                c.recipient,
                c.locale,
                literal("pending"),
                literal(0),
                literal(now, sa.DateTime),
                literal(self.run_id),
                literal(SYNC_ACTOR),
            ),
        )
        return event, mail

    def _create_each(self, low: int, high: int) -> None:
        st = self.staging.table
        rows = self.conn.execute(
            sa.select(st.c.seq, st.c.erp_id).where(
                st.c.action.in_(("create", "readd")), st.c.seq > low, st.c.seq <= high
            )
        ).all()
        self.conn.commit()
        for seq, erp_id in rows:
            try:
                self._create_range(seq - 1, seq)
                self.conn.commit()
            except sa.exc.DBAPIError as exc:
                self._quarantine("the creates", erp_id, exc)

    def _restore_all(self) -> None:
        """`readd = "restore"`: reopen the newest closed identity instead of creating one."""
        st = self.staging.table
        rows = self.conn.execute(sa.select(st).where(st.c.action == "readd").order_by(st.c.seq)).mappings().all()
        self.conn.commit()
        for batch in self._batched(rows):
            self._transaction(
                "the restores", lambda b=batch: self._restore_batch(b), lambda b=batch: self._restore_each(b)
            )

    def _restore_batch(self, batch: Sequence[Any]) -> None:
        st = self.staging.table
        now = utcnow()
        for r in batch:
            erp_id, contact_id = split_key(r["erp_id"])
            same_contact = (
                accounts.c.contact_id.is_(None) if contact_id is None else accounts.c.contact_id == contact_id
            )
            closed = self.conn.execute(
                sa.select(accounts.c.id, accounts.c.activated_at)
                .where(accounts.c.erp_id == erp_id, same_contact, accounts.c.status == "removed")
                .order_by(accounts.c.removed_at.desc(), accounts.c.created_at.desc())
                .limit(1)
            ).first()
            if closed is None:
                continue
            status = restored_status(closed.activated_at is not None)
            self.conn.execute(
                accounts.update()
                .where(accounts.c.id == closed.id)
                .values(
                    status=status,
                    login=r["login"],
                    live_login=r["login"],
                    live_erp_id=erp_id,
                    live_key=r["erp_id"],
                    fingerprint=r["fingerprint"],
                    removed_at=None,
                    removed_reason=None,
                    updated_at=now,
                    **{f: r[f] for f in self.fields},
                )
            )
            self.conn.execute(
                account_events.insert().values(
                    account_id=closed.id, erp_id=erp_id, run_id=self.run_id, actor=SYNC_ACTOR,
                    kind="restored", at=now,
                )
            )  # fmt: skip
            if status == "pending_activation":
                self.conn.execute(
                    outbox.insert().values(
                        **self._mail(closed.id, "activation", r.get("email") or r["login"], r["locale"], now)
                    )
                )
                self.result.mails_queued += 1
            self.conn.execute(st.update().where(st.c.seq == r["seq"]).values(action="restored"))
            self.result.created += 1
            self.result.readded += 1

    def _restore_each(self, batch: Sequence[Any]) -> None:
        for row in batch:
            try:
                self._restore_batch([row])
                self.conn.commit()
            except sa.exc.DBAPIError as exc:
                self._quarantine("the restores", row["erp_id"], exc)
