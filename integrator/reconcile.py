"""The sync diff: every identity decision (create, update, unchanged, remove, re-add, login ownership) in one place.

The store applies what is decided here and decides nothing itself: which creates are re-adds (`Plan.readds`), and,
on the state an account is in when it is written, which mail a login change sends, a restored identity's status,
whether a changed row changed the account, and the removal notice (the functions at the end of this module).

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
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from integrator.identity import KEY_SEPARATOR, key_order
from integrator.records import Record, fingerprint, normalize_login
from integrator.rules.engine import RuleEngine, RuleError
from integrator.rules.reasons import DUPLICATE_EMAIL, DUPLICATE_ERP_ID, MISSING_TAG

__all__ = [
    "NOT_IN_SOURCE",
    "Ledger",
    "Lookups",
    "MemoryLookups",
    "Plan",
    "Quarantined",
    "Reconciler",
    "Rejection",
    "Removal",
    "erp_sort_key",
    "field_changes",
    "login_change_mail",
    "removal_mail",
    "restored_status",
]

NOT_IN_SOURCE = "not_in_source"


Ledger = dict[str, str]
"""The live accounts a run starts from: erp_id -> fingerprint of the row each was last written from. Only
that: a million entries must load fast and stay small; ids and logins are looked up (`Lookups`) for the few
customers whose decision needs them."""


class Lookups(Protocol):
    """What the decisions need from the store beyond the ledger, asked only for the few rows concerned."""

    def holders(self, logins: Collection[str]) -> dict[str, str]:
        """login -> erp_id of the live account holding each of these logins (absent: nobody holds it)."""
        ...

    def accounts(self, erp_ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """erp_id -> (account id, login) of the live account of each of these customers."""
        ...

    def closed(self, erp_ids: Collection[str]) -> set[str]:
        """Those of these customers that have a closed (removed) identity: their create is a re-add."""
        ...


class MemoryLookups:
    """`Lookups` over accounts held in memory, as (erp_id, account id, login) triples (tests, small tools), and the
    erp_ids that have a closed identity."""

    def __init__(self, live: Iterable[tuple[str, str, str]], closed: Iterable[str] = ()) -> None:
        self._accounts = {erp_id: (account_id, login) for erp_id, account_id, login in live}
        self._by_login = {login: erp_id for erp_id, (_, login) in self._accounts.items()}
        self._closed = set(closed)

    def holders(self, logins: Collection[str]) -> dict[str, str]:
        return {login: self._by_login[login] for login in logins if login in self._by_login}

    def accounts(self, erp_ids: Collection[str]) -> dict[str, tuple[str, str]]:
        return {erp_id: self._accounts[erp_id] for erp_id in erp_ids if erp_id in self._accounts}

    def closed(self, erp_ids: Collection[str]) -> set[str]:
        return self._closed.intersection(erp_ids)


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
    readds: set[str] = field(default_factory=set)
    """Of the creates: customers that had an identity before, now closed. Under `readd = "new_identity"` each gets a
    brand-new identity; under `"restore"` its newest closed identity is reopened."""
    live_before: int = 0


def erp_sort_key(erp_id: str) -> tuple[int, int, str, str]:
    """Order of erp_ids for "the smallest wins": numbers by value, before any other id; a total order, so the
    winner never depends on the order the source returns rows in.

    Numbers are ASCII digits only (`str.isdigit` also accepts `٧` or `７`, which are codes here). Their value is
    compared as (length, digits) without leading zeros, so no id is too long for `int`; equal values (`7`,
    `007`) and all other ids are ordered by the raw string."""
    if erp_id.isascii() and erp_id.isdigit():
        digits = erp_id.lstrip("0")
        return (0, len(digits), digits, erp_id)
    return (1, 0, "", erp_id)


def _email_login(record: Record) -> str:
    return normalize_login(record.email)


StageFn = Callable[[str, str, str, str, Record], None]
"""stage(action, erp_id, login, fingerprint, record); action: `create` or `update` (an update's account is found
by its erp_id when the plan is applied)."""


class Reconciler:
    """Feeds records against the live ledger; `finish()` returns the `Plan`.

    `scope`: when set (`sync --only ERP_ID`), only that customer (or its contacts) may be removed for being
    absent. `tag`: the normalised eligibility tag, letting `skip` leave out untagged rows without judging them.
    `login(record)`: the login a record asks for (the normalised e-mail unless `[accounts] login = "username"`);
    `duplicate_reason`: the code its losers get; `on_eligible(key)`: told of every record that passes the rules
    (before the login contest). With a contacts source, the records fed are one per contact and
    each record's `erp_id` is the contact's identity key (`integrator.identity`): every rule here then holds per
    contact.
    """

    def __init__(
        self,
        ledger: Ledger,
        engine: RuleEngine,
        stage: StageFn,
        *,
        lookups: Lookups,
        scope: str | None = None,
        tag: str | None = None,
        login: Callable[[Record], str] | None = None,
        duplicate_reason: str = DUPLICATE_EMAIL,
        on_eligible: Callable[[str], None] | None = None,
    ) -> None:
        self._fingerprints = ledger
        self._lookups = lookups
        self._logins: dict[str, str] = {}  # erp_id -> current login, looked up when a decision needs it
        self._engine = engine
        self._stage = stage
        self._scope = scope
        self._tag = tag
        """The normalised tag, for the untagged-row fast path (None: every row is judged by the rules)."""
        self._seen: set[str] = set()  # live customers met in the source (live erp_ids only: `finish` counts them)
        self._winners: dict[str, str] = {}  # login -> erp_id holding it so far (judged records only)
        self._won: dict[str, str] = {}  # live erp_id -> the login it holds as a winner
        self._staged_new: set[str] = set()  # erp_ids staged for create (duplicate-id detection)
        self._staged_updates: set[str] = set()  # live erp_ids staged for update
        self._rejected_live: dict[str, tuple[str, ...]] = {}
        self._unkeyed = 0
        self._login = login or _email_login
        self._duplicate = duplicate_reason
        self._on_eligible = on_eligible
        self.plan = Plan(live_before=len(ledger))

    # -- reading -----------------------------------------------------------------------------------------
    def skip(self, erp_id: str, digest: str, tags: frozenset[str]) -> bool:
        """The fast path, asked before a row is converted: True when the row needs no record.

        * Its live account was last written from this very row (the digest is keyed by the config, so the
          same row under the same reading gets the same verdict and fields): unchanged. Its account keeps
          its login; a newcomer asking for that login loses in `finish()`.
        * It lacks the tag and has no live account: left out (`missing_tag`), with nothing to remove. Its
          other reasons, if any, are not looked for (`explain` and `report` show them).
        """
        known = self._fingerprints.get(erp_id)
        plan = self.plan
        if known is None:
            if self._tag is None or self._tag in tags or not erp_id:
                return False
            plan.records += 1
            plan.rejected += 1
            plan.rejected_by_reason[MISSING_TAG] += 1
            return True
        if known != digest or erp_id in self._seen:
            return False
        self._seen.add(erp_id)
        plan.records += 1
        plan.unchanged += 1
        plan.skipped += 1
        return True

    def left_out(self, count: int) -> None:
        """`count` untagged rows that a connector left out unread (`connectors.base.LeaveOut`, asked for only when
        the ledger is empty): each is what `skip` makes of an untagged row without a live account."""
        if self._fingerprints:
            raise ValueError("rows can be left out unread only when no account is live")
        plan = self.plan
        plan.records += count
        plan.rejected += count
        plan.rejected_by_reason[MISSING_TAG] += count

    def feed(self, record: Record) -> None:
        """Judge one record and stage its account write, if any."""
        plan = self.plan
        plan.records += 1
        erp_id = record.erp_id
        if record.problems:
            self._quarantine(record, "; ".join(record.problems))
            return
        live = erp_id in self._fingerprints
        if (live and erp_id in self._seen) or erp_id in self._staged_new:
            self._reject(record, (DUPLICATE_ERP_ID,), live=False)
            return
        try:
            verdict = self._engine.evaluate(record)
        except RuleError as exc:
            self._quarantine(record, str(exc))
            return
        if live:
            self._seen.add(erp_id)
        if not verdict.keep:
            self._reject(record, verdict.reasons, live=live)
            return
        if self._on_eligible is not None:
            self._on_eligible(erp_id)
        login = self._login(record)
        if not self._contest(login, erp_id):
            return
        # The raw row's digest when the connector gives one; else a digest of the synced fields.
        digest = record.digest or fingerprint(record, login)
        if not live:
            self._staged_new.add(erp_id)
            plan.creates += 1
            self._stage("create", erp_id, login, digest, record)
        elif self._fingerprints[erp_id] == digest:
            plan.unchanged += 1
        else:
            self._staged_updates.add(erp_id)
            plan.updates += 1
            self._stage("update", erp_id, login, digest, record)

    def feed_all(self, records: Iterable[Record]) -> None:
        """Feed every record of an iterable."""
        for record in records:
            self.feed(record)

    def _quarantine(self, record: Record, error: str) -> None:
        if not record.erp_id:
            self._unkeyed += 1
        if record.erp_id in self._fingerprints:
            self._seen.add(record.erp_id)
        self.plan.quarantined.append(Quarantined(record.erp_id, error, record.origin))

    def _reject(self, record: Record, reasons: tuple[str, ...], *, live: bool) -> None:
        plan = self.plan
        plan.rejected += 1
        plan.rejected_by_reason.update(reasons)
        if MISSING_TAG not in reasons:
            plan.rejections.append(Rejection(record.erp_id, reasons, record.origin))
        if live:
            self._rejected_live[record.erp_id] = reasons

    def _contest(self, login: str, erp_id: str) -> bool:
        """Enter `erp_id` for `login`; False when it lost at once (it is then rejected, nothing staged)."""
        holder = self._winners.get(login)
        if holder is not None and self._rank(erp_id, login) >= self._rank(holder, login):
            self._lose(erp_id)
            return False
        self._winners[login] = erp_id
        if erp_id in self._fingerprints:  # only live accounts can move away from a login they hold
            self._won[erp_id] = login
        if holder is not None:
            self._lose(holder)
        return True

    def _rank(self, erp_id: str, login: str) -> tuple[int, tuple[int, int, str]]:
        owns = erp_id in self._fingerprints and self._login_of(erp_id) == login
        return (0 if owns else 1, key_order(erp_id, erp_sort_key))

    def _login_of(self, erp_id: str) -> str | None:
        """The current login of a live account (asked only when two customers want one login)."""
        if erp_id not in self._logins:
            for key, (_, login) in self._lookups.accounts([erp_id]).items():
                self._logins[key] = login
        return self._logins.get(erp_id)

    def _lose(self, erp_id: str) -> None:
        """`erp_id` loses the login it asked for: drop its staged write, reject it, keep its old account."""
        plan = self.plan
        self._won.pop(erp_id, None)
        if erp_id in self._staged_new:
            self._staged_new.discard(erp_id)
            plan.creates -= 1
            plan.unstaged.add(erp_id)
        elif erp_id in self._staged_updates:
            self._staged_updates.discard(erp_id)
            plan.updates -= 1
            plan.unstaged.add(erp_id)
        plan.rejected += 1
        plan.rejected_by_reason[self._duplicate] += 1
        plan.rejections.append(Rejection(erp_id, (self._duplicate,)))

    # -- deciding ----------------------------------------------------------------------------------------
    def finish(self) -> Plan:
        """Decide removals and settle logins held by accounts this run leaves alone."""
        plan = self.plan
        removals: list[tuple[str, tuple[str, ...]]] = []
        deferred: list[tuple[str, tuple[str, ...]]] = []
        seen, rejected = self._seen, self._rejected_live
        # A resync usually meets every live customer, and `seen` holds live erp_ids only: equal sizes say so
        # without a loop over a million ledger entries.
        if rejected or len(seen) < len(self._fingerprints):
            for erp_id in self._fingerprints:
                if erp_id in rejected:
                    removals.append((erp_id, rejected[erp_id]))
                elif erp_id not in seen and self._in_scope(erp_id):
                    # Rows without an erp_id may be these very customers: never remove on a guess.
                    (deferred if self._unkeyed else removals).append((erp_id, (NOT_IN_SOURCE,)))
        found = self._lookups.accounts([erp_id for erp_id, _ in removals + deferred]) if removals or deferred else {}
        plan.removals = [Removal(e, *found.get(e, ("", "")), why) for e, why in removals]
        plan.deferred_removals = [Removal(e, *found.get(e, ("", "")), why) for e, why in deferred]
        self._settle_logins({erp_id for erp_id, _ in removals})
        plan.readds = self._lookups.closed(self._staged_new) if self._staged_new else set()
        return plan

    def _in_scope(self, key: str) -> bool:
        """Whether a live account not met in the source may be removed: always, or in a `--only` run only the
        customer's own (its per-customer account, or any of its contacts')."""
        scope = self._scope
        return scope is None or key == scope or key.startswith(scope + KEY_SEPARATOR)

    def _settle_logins(self, removed: set[str]) -> None:
        """A live account that stays, and does not move to another login, keeps the login it holds; whoever
        won that login from the source loses it. A loser that is itself live keeps its old login in turn."""
        if not self._winners or not self._fingerprints:
            return
        holders = self._lookups.holders(list(self._winners))
        kept = [
            (login, holder)
            for login, holder in holders.items()
            if holder != self._winners.get(login) and holder not in removed and self._won.get(holder, login) == login
        ]
        while kept:
            login, keeper = kept.pop()
            winner = self._winners.get(login)
            if winner is None or winner == keeper:
                continue
            del self._winners[login]
            self._lose(winner)
            old_login = self._login_of(winner) if winner in self._fingerprints else None
            if old_login is not None and winner not in removed and old_login != login:
                kept.append((old_login, winner))


# -- decisions taken on an account's state when the plan is applied ---------------------------------------------
# The apply reads an account's current state in the transaction that writes it (the portal may have activated it
# since the plan was made) and asks these what that state means; the store only carries the answers out.


def login_change_mail(status: str) -> str:
    """The mail a login change sends to the new address: a pending account never got in, so its activation goes
    there anew; an account in use is told its login changed."""
    return "activation" if status == "pending_activation" else "login_changed"


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]) -> dict[str, list[Any]]:
    """{field: [old, new]} of the synced fields that differ (decimals by value). Empty: the row was re-read
    differently but the account did not change, so only its stored digest is renewed ("refresh")."""
    return {f: [_jsonable(before[f]), _jsonable(after[f])] for f in fields if not _same(before[f], after[f])}


def restored_status(activated: bool) -> str:
    """`readd = "restore"`: the reopened identity's status is the one it had earned: active if it was ever
    activated (its password still works), else pending (and it gets a new activation mail)."""
    return "active" if activated else "pending_activation"


def removal_mail(notice: bool) -> str | None:
    """The mail a removal queues: the optional `account_removed` notice ([mail] send_removal_notice), else none."""
    return "account_removed" if notice else None


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, Decimal) or isinstance(new, Decimal):
        try:
            return (old is None and new is None) or (
                old is not None and new is not None and Decimal(str(old)) == Decimal(str(new))
            )
        except ArithmeticError:
            return False
    return old == new


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
