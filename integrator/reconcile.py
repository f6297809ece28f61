"""The sync diff: every identity decision (create, update, unchanged, remove, re-add, login ownership) in one place.

`Reconciler` is pure logic. It is fed one record at a time against the ledger of live accounts and hands
every account that must be written to a `stage` callback (the sync stages them in a database table, so a
million-row initial sync never holds the full records in memory). What it keeps per customer is what the
ledger already holds, plus one login entry per eligible customer.

Login ownership (SPEC "Identity semantics"): among eligible customers sharing a login, the one whose live
account already has that login keeps it; otherwise the smallest `erp_id` wins (numeric ids compare as numbers
and sort before other ids). Losers are rejected with `duplicate_email`; a loser that has a live account under
another login keeps that account unchanged, so a typo in the ERP never closes an account. A live account that
this run does not touch (its record quarantined, say) keeps its login, and a newcomer asking for it loses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from integrator.records import Record, fingerprint, normalize_login
from rules.engine import RuleEngine, RuleError
from rules.reasons import DUPLICATE_EMAIL, DUPLICATE_ERP_ID, MISSING_TAG

__all__ = [
    "NOT_IN_SOURCE",
    "LiveAccount",
    "Plan",
    "Quarantined",
    "Reconciler",
    "Rejection",
    "Removal",
    "erp_sort_key",
]

NOT_IN_SOURCE = "not_in_source"


@dataclass(slots=True)
class LiveAccount:
    """One live account as the sync sees it: enough to decide, nothing more (a million of these fit)."""

    erp_id: str
    id: str
    login: str
    fingerprint: str
    seen: bool = False
    won: bool = False


@dataclass(frozen=True, slots=True)
class Removal:
    """A live account to close, and why."""

    erp_id: str
    account_id: str
    login: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record carrying the tag that was still left out (untagged records are only counted)."""

    erp_id: str
    reasons: tuple[str, ...]
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record that could not be judged or applied; its account, if any, is left exactly as it was."""

    erp_id: str
    error: str
    origin: str = ""


@dataclass
class Plan:
    """What a run will do. Counts are final once `Reconciler.finish()` returned it."""

    records: int = 0
    creates: int = 0
    updates: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Unchanged records recognised by their raw-row digest alone (a subset of `unchanged`)."""
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    deferred_removals: list[Removal] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    unstaged: set[str] = field(default_factory=set)
    """erp_ids staged during the read that lost their login at the end: the sync drops them from staging."""
    live_before: int = 0


def erp_sort_key(erp_id: str) -> tuple[int, int, str]:
    """Order of erp_ids for "the smallest wins": numbers by value, before any other id."""
    if erp_id.isdigit():
        return (0, int(erp_id), "")
    return (1, 0, erp_id)


StageFn = Callable[[str, str, str | None, str, str, Record], None]
"""stage(action, erp_id, account_id, login, fingerprint, record); action: `create` or `update`."""


class Reconciler:
    """Feeds records against the live ledger; `finish()` returns the `Plan`.

    `scope`: when set (`sync --only ERP_ID`), only that customer may be removed for being absent. `tag`: the
    normalised eligibility tag, letting `skip` leave out untagged rows without judging them.
    """

    def __init__(
        self,
        ledger: dict[str, LiveAccount],
        engine: RuleEngine,
        stage: StageFn,
        *,
        scope: str | None = None,
        tag: str | None = None,
    ) -> None:
        self._ledger = ledger
        self._engine = engine
        self._stage = stage
        self._scope = scope
        self._tag = tag
        """The normalised tag, for the untagged-row fast path (None: every row is judged by the rules)."""
        self._winners: dict[str, str] = {}  # login -> erp_id holding it so far
        self._staged_new: set[str] = set()  # erp_ids staged for create (duplicate-id detection)
        self._staged_logins: dict[str, str] = {}  # erp_id -> login, for staged rows that may still lose
        self._rejected_live: dict[str, tuple[str, ...]] = {}
        self._unkeyed = 0
        self.plan = Plan(live_before=len(ledger))

    # -- reading -----------------------------------------------------------------------------------------
    def skip(self, erp_id: str, digest: str, tags: frozenset[str]) -> bool:
        """The fast path, asked before a row is converted: True when the row needs no record.

        * Its live account was last written from this very row (the digest is keyed by the config, so the
          same row under the same reading gets the same verdict and fields): unchanged. It still claims its
          login, so a newcomer asking for it loses as it would on the slow path.
        * It lacks the tag and has no live account: left out (`missing_tag`), with nothing to remove. Its
          other reasons, if any, are not looked for (`explain` and `report` show them).
        """
        account = self._ledger.get(erp_id)
        if account is None:
            if self._tag is None or self._tag in tags or not erp_id:
                return False
            plan = self.plan
            plan.records += 1
            plan.rejected += 1
            plan.rejected_by_reason[MISSING_TAG] += 1
            return True
        if account.fingerprint != digest or account.seen:
            return False
        account.seen = True
        plan = self.plan
        plan.records += 1
        plan.unchanged += 1
        plan.skipped += 1
        if account.login in self._winners:  # a newcomer asked first; the owner takes the login from it
            self._contest(account.login, erp_id)
        else:
            self._winners[account.login] = erp_id
            account.won = True
        return True

    def feed(self, record: Record) -> None:
        """Judge one record and stage its account write, if any."""
        plan = self.plan
        plan.records += 1
        erp_id = record.erp_id
        if record.problems:
            self._quarantine(record, "; ".join(record.problems))
            return
        account = self._ledger.get(erp_id)
        if (account is not None and account.seen) or erp_id in self._staged_new:
            self._reject(record, (DUPLICATE_ERP_ID,), account=None)
            return
        try:
            verdict = self._engine.evaluate(record)
        except RuleError as exc:
            self._quarantine(record, str(exc))
            return
        if account is not None:
            account.seen = True
        if not verdict.keep:
            self._reject(record, verdict.reasons, account=account)
            return
        login = normalize_login(record.email)
        if not self._contest(login, erp_id):
            return
        # The raw row's digest when the connector gives one; else a digest of the synced fields.
        digest = record.digest or fingerprint(record, login)
        if account is None:
            self._staged_new.add(erp_id)
            plan.creates += 1
            self._stage("create", erp_id, None, login, digest, record)
        elif account.fingerprint == digest:
            plan.unchanged += 1
        else:
            if login != account.login:
                self._staged_logins[erp_id] = login
            plan.updates += 1
            self._stage("update", erp_id, account.id, login, digest, record)

    def feed_all(self, records: Iterable[Record]) -> None:
        """Feed every record of an iterable."""
        for record in records:
            self.feed(record)

    def _quarantine(self, record: Record, error: str) -> None:
        if not record.erp_id:
            self._unkeyed += 1
        account = self._ledger.get(record.erp_id)
        if account is not None:
            account.seen = True
        self.plan.quarantined.append(Quarantined(record.erp_id, error, record.origin))

    def _reject(self, record: Record, reasons: tuple[str, ...], *, account: LiveAccount | None) -> None:
        plan = self.plan
        plan.rejected += 1
        plan.rejected_by_reason.update(reasons)
        if MISSING_TAG not in reasons:
            plan.rejections.append(Rejection(record.erp_id, reasons, record.origin))
        if account is not None:
            self._rejected_live[record.erp_id] = reasons

    def _contest(self, login: str, erp_id: str) -> bool:
        """Enter `erp_id` for `login`; False when it lost at once (it is then rejected, nothing staged)."""
        holder = self._winners.get(login)
        if holder is not None and self._rank(erp_id, login) >= self._rank(holder, login):
            self._lose(erp_id)
            return False
        self._winners[login] = erp_id
        self._mark_won(erp_id, True)
        if holder is not None:
            self._lose(holder)
        return True

    def _rank(self, erp_id: str, login: str) -> tuple[int, tuple[int, int, str]]:
        account = self._ledger.get(erp_id)
        owns = account is not None and account.login == login
        return (0 if owns else 1, erp_sort_key(erp_id))

    def _mark_won(self, erp_id: str, won: bool) -> None:
        account = self._ledger.get(erp_id)
        if account is not None:
            account.won = won

    def _lose(self, erp_id: str) -> None:
        """`erp_id` loses the login it asked for: drop its staged write, reject it, keep its old account."""
        plan = self.plan
        self._mark_won(erp_id, False)
        if erp_id in self._staged_new:
            self._staged_new.discard(erp_id)
            plan.creates -= 1
            plan.unstaged.add(erp_id)
        elif erp_id in self._staged_logins:
            plan.updates -= 1
            plan.unstaged.add(erp_id)
        self._staged_logins.pop(erp_id, None)
        plan.rejected += 1
        plan.rejected_by_reason[DUPLICATE_EMAIL] += 1
        plan.rejections.append(Rejection(erp_id, (DUPLICATE_EMAIL,)))

    # -- deciding ----------------------------------------------------------------------------------------
    def finish(self) -> Plan:
        """Decide removals and settle logins held by accounts this run leaves alone."""
        plan = self.plan
        for erp_id, account in self._ledger.items():
            if erp_id in self._rejected_live:
                plan.removals.append(Removal(erp_id, account.id, account.login, self._rejected_live[erp_id]))
            elif not account.seen and (self._scope is None or self._scope == erp_id):
                removal = Removal(erp_id, account.id, account.login, (NOT_IN_SOURCE,))
                # Rows without an erp_id may be these very customers: never remove on a guess.
                (plan.deferred_removals if self._unkeyed else plan.removals).append(removal)
        removed = {r.erp_id for r in plan.removals}
        # Accounts that stay live without having won a login this run keep the login they hold.
        pending = [a for a in self._ledger.values() if not a.won and a.erp_id not in removed]
        while pending:
            keeper = pending.pop()
            winner = self._winners.get(keeper.login)
            if winner is None or winner == keeper.erp_id:
                continue
            del self._winners[keeper.login]
            self._lose(winner)
            loser_account = self._ledger.get(winner)
            if loser_account is not None and loser_account.erp_id not in removed:
                pending.append(loser_account)
        return plan
