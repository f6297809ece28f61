"""Who has access and why: `explain` for one customer, `report` for every customer of the source.

Both judge the source as it is now with the same rules and login contest the sync uses (a `Reconciler` that
stages nothing), and join the answer with the accounts in the store. With a contacts source they build the
records the sync builds (`integrator.contacts.ContactJoin`, the contact and customer rule engines): one per
contact person, keyed by (erp_id, contact_id), and each customer's own verdict beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.config import Config
from integrator.connectors import make_connector
from integrator.contacts import ContactJoin
from integrator.identity import identity_key, ids_of, login_function, split_key
from integrator.reconcile import Reconciler
from integrator.records import Record
from integrator.rules import build_engine
from integrator.rules.engine import RuleEngine, RuleError, RuleResult, build_contact_engine, build_customer_engine
from integrator.rules.reasons import DUPLICATE_EMAIL, DUPLICATE_USERNAME, NO_ELIGIBLE_CONTACT, describe
from integrator.rules.tag import normalize_tag
from integrator.store.ledger import StoreLookups, load_live_ledger
from integrator.store.queries import account_events_of, iter_accounts
from integrator.store.schema import accounts, quarantine, run_actions

__all__ = [
    "ContactExplanation",
    "Explanation",
    "Judged",
    "Judgement",
    "ReportRow",
    "duplicate_reason",
    "explain",
    "judge_source",
    "report",
]


@dataclass
class Explanation:
    """Everything known about one customer's access."""

    erp_id: str
    in_source: bool
    eligible: bool
    rules: list[RuleResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    login: str | None = None
    reasons: list[str] = field(default_factory=list)
    """The reason codes a sync would give now, as `report` has them (the login contest's `duplicate_email` too)."""
    login_held_by: str | None = None
    """The customer that keeps or gets this login instead (the duplicate_email case): the one the sync's contest
    gives it to, or the live account that holds it."""
    identities: list[dict[str, Any]] = field(default_factory=list)
    last_actions: list[dict[str, Any]] = field(default_factory=list)
    quarantine: dict[str, Any] | None = None
    contacts: list[ContactExplanation] | None = None
    """With a contacts source: each contact person of the customer (in the source, or known from an account),
    with its verdict and account; the customer's own `rules`, `reasons` and `eligible` then say whether its
    contacts may have accounts (`no_eligible_contact` when none of them does), and `login` is None. Without
    one: None."""


@dataclass
class ContactExplanation:
    """One contact person of a customer: its verdict now and its account."""

    contact_id: str
    name: str | None
    in_source: bool
    eligible: bool
    login: str | None = None
    rules: list[RuleResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    """The reason codes a sync would give this contact now (the login contest's too)."""
    login_held_by: dict[str, str | None] | None = None
    """`{"erp_id", "contact_id"}` of the account that keeps or gets this login instead (the duplicate case)."""
    account: dict[str, Any] | None = None
    """Its live account, else its newest identity (`id`, `login`, `status`, `blocked`); None when it never had one."""
    quarantine: dict[str, Any] | None = None


class Judged(NamedTuple):
    """One source record as a sync would judge it now (a tuple: `report` keeps one per source row)."""

    erp_id: str
    name: str
    login: str
    reasons: tuple[str, ...]
    """Empty when eligible; else the rules' reasons, `unreadable: ...`, or the contest's duplicate reason."""
    contact_name: str | None = None
    """The contact person's name (contacts sources)."""


def duplicate_reason(config: Config) -> str:
    """The reason the login contest's losers get: `duplicate_email`, or `duplicate_username` for username logins."""
    return DUPLICATE_USERNAME if config.accounts.login == "username" else DUPLICATE_EMAIL


@dataclass
class Judgement:
    """The whole source judged as a sync would judge it now."""

    judged: list[Judged]
    """Every record fed to the login contest, in source order (with contacts: one per contact, its `erp_id` the
    identity key)."""
    rules: RuleEngine
    """The engine those records were judged with (`rules.explain` gives every rule's verdict)."""
    kept: list[Record]
    """The records of the customer asked for (its own; with contacts, its contacts')."""
    join: ContactJoin | None = None
    """With contacts: the customers as the sync read them (`join.customers`, `join.unreadable`)."""
    customer_rules: RuleEngine | None = None
    """With contacts: the rules a customer itself meets."""
    customers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """With contacts: each customer's own reasons (its rules', `unreadable: …`, `no_eligible_contact`), by
    erp_id, in source order."""
    customer: Record | None = None
    """With contacts: the customer row asked for, as the source returned it (the join keeps no fields of an
    untagged customer)."""
    names: dict[str, str] = field(default_factory=dict)
    """With contacts: every customer's name, by erp_id (for the same reason)."""


def judge_source(config: Config, conn: sa.Connection, *, keep: str | None = None) -> Judgement:
    """Every record of the source judged with the sync's rules and login contest (a `Reconciler` over the live
    accounts that stages nothing), in source order; with a contacts source, the records the sync builds (one per
    contact) and each customer's own verdict. `keep`: an erp_id whose records to keep."""
    ledger = load_live_ledger(conn)
    duplicate = duplicate_reason(config)
    login_of = login_function(config.accounts.login)
    join = customer_rules = None
    if config.source.has_contacts:  # as the sync's `_run` builds them
        customer_rules = build_customer_engine(config.rules)
        join = ContactJoin(customer_rules, normalize_tag(config.rules.tag))
        rules = build_contact_engine(config.rules, join.customers, login=config.accounts.login)
    else:
        rules = build_engine(config.rules, login=config.accounts.login)
    reconciler = Reconciler(
        ledger,
        rules,
        lambda *args: None,
        lookups=StoreLookups(conn.engine, ledger),
        login=login_of,
        duplicate_reason=duplicate,
        on_eligible=join.contact_eligible if join is not None else None,
    )
    connector = make_connector(config.source)
    records: Iterable[Record] = connector.records()
    result = Judgement([], rules, [], join, customer_rules)
    if join is not None:
        join.read_customers(_tapped(records, keep, result), reconciler.plan)
        records = join.records(connector.contacts())
    judged: list[Judged] = []
    kept: list[Record] = []
    for record in records:
        reconciler.feed(record)
        if record.problems:
            reasons: tuple[str, ...] = ("unreadable: " + "; ".join(record.problems),)
        else:
            try:
                reasons = rules.evaluate(record).reasons
            except RuleError as exc:
                reasons = (str(exc),)
        judged.append(Judged(record.erp_id, record.name or "", login_of(record), reasons, record.contact_name))
        if keep is not None and split_key(record.erp_id)[0] == keep and (join is not None or not kept):
            kept.append(record)
    plan = reconciler.finish()
    losers = {r.erp_id for r in plan.rejections if duplicate in r.reasons}
    if losers:
        judged = [
            j if j.erp_id not in losers or duplicate in j.reasons else j._replace(reasons=(*j.reasons, duplicate))
            for j in judged
        ]
    result.judged, result.kept = judged, kept
    if join is not None and customer_rules is not None:
        join.report_without_contact(plan)
        result.customers = _customer_reasons(join, customer_rules, plan.rejections)
    return result


def _tapped(records: Iterable[Record], keep: str | None, judgement: Judgement) -> Iterator[Record]:
    """The customer rows, on their way to the join, leaving their names and the row of `keep` with `judgement`."""
    names = judgement.names
    for record in records:
        names.setdefault(record.erp_id, record.name or "")
        if record.erp_id == keep and judgement.customer is None:
            judgement.customer = record
        yield record


def _customer_reasons(join: ContactJoin, rules: RuleEngine, rejections: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    """Each customer's own reasons when its contacts get the accounts."""
    found: dict[str, tuple[str, ...]] = {}
    for erp_id, record in join.customers.items():
        try:
            found[erp_id] = rules.evaluate(record).reasons
        except RuleError as exc:
            found[erp_id] = (str(exc),)
    for erp_id, problem in join.unreadable.items():
        found.setdefault(erp_id, (f"unreadable: {problem}",))
    for rejection in rejections:  # (a customer row the source repeats is kept once: not a verdict on it)
        if NO_ELIGIBLE_CONTACT in rejection.reasons and rejection.erp_id in found:
            found[rejection.erp_id] = (*found[rejection.erp_id], NO_ELIGIBLE_CONTACT)
    return found


def explain(config: Config, engine: Engine, erp_id: str) -> Explanation:
    """Every rule's verdict for `erp_id` now and the login contest's, run over the whole source as a sync runs it
    (so a customer that loses a shared e-mail is `duplicate_email` even before any sync), who keeps its login if
    it lost, its identities and their history; with a contacts source, the customer's own verdict and each of
    its contacts' (`Explanation.contacts`)."""
    with engine.connect() as conn:
        judgement = judge_source(config, conn, keep=erp_id)
    if judgement.join is not None:
        record = judgement.customer if erp_id in judgement.join.customers else None
        result = Explanation(erp_id=erp_id, in_source=record is not None or erp_id in judgement.join.unreadable,
                             eligible=False, contacts=[])  # fmt: skip
    else:
        record = judgement.kept[0] if judgement.kept else None
        result = Explanation(erp_id=erp_id, in_source=record is not None, eligible=False)
    if judgement.join is not None:
        result.reasons = list(judgement.customers.get(erp_id, ()))
        if erp_id in judgement.join.unreadable:
            result.problems = [judgement.join.unreadable[erp_id]]
        elif record is not None and judgement.customer_rules is not None:
            result.rules = _verdicts(judgement.customer_rules, record, result.problems)
        result.eligible = result.in_source and not result.reasons
    elif record is not None:
        mine = next(j for j in judgement.judged if j.erp_id == erp_id)
        result.login = mine.login
        result.reasons = list(mine.reasons)
        result.problems = list(record.problems)
        if not record.problems:
            result.rules = _verdicts(judgement.rules, record, result.problems)
        result.eligible = not mine.reasons
    with engine.connect() as conn:
        if result.login and duplicate_reason(config) in result.reasons:
            holder = _login_holder(conn, judgement.judged, result.login)
            result.login_held_by = holder["erp_id"] if holder and holder["erp_id"] != erp_id else None
        for account in iter_accounts(conn, erp_id=erp_id):
            account["events"] = account_events_of(conn, account_id=account["id"])
            result.identities.append(account)
        result.last_actions = [
            dict(r)
            for r in conn.execute(
                sa.select(run_actions.c.run_id, run_actions.c.contact_id, run_actions.c.action, run_actions.c.reason)
                .where(run_actions.c.erp_id == erp_id)
                .order_by(run_actions.c.id.desc())
                .limit(10)
            ).mappings()
        ]
        result.quarantine = _quarantined(conn, erp_id)
        if result.contacts is not None:
            result.contacts = _contacts(config, conn, judgement, erp_id, result.identities)
    return result


def _verdicts(rules: RuleEngine, record: Record, problems: list[str]) -> list[RuleResult]:
    """Every rule's verdict on a readable record; a rule that fails to judge it is a problem."""
    try:
        return rules.explain(record)
    except RuleError as exc:
        problems.append(str(exc))
        return []


def _login_holder(conn: sa.Connection, judged: list[Judged], login: str) -> dict[str, str | None] | None:
    """Who keeps or gets `login`: the eligible record the contest gives it to, else the live account holding
    it (one this run leaves alone, its record quarantined say); as `{"erp_id", "contact_id"}`."""
    winner = next((j.erp_id for j in judged if j.login == login and not j.reasons), None)
    if winner is not None:
        return ids_of(winner)
    row = conn.execute(
        sa.select(accounts.c.erp_id, accounts.c.contact_id).where(accounts.c.live_login == login)
    ).first()
    return {"erp_id": row.erp_id, "contact_id": row.contact_id} if row else None


def _quarantined(conn: sa.Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(quarantine).where(quarantine.c.erp_id == key)).mappings().first()
    return dict(row) if row else None


def _contacts(
    config: Config, conn: sa.Connection, judgement: Judgement, erp_id: str, identities: list[dict[str, Any]]
) -> list[ContactExplanation]:
    """Each contact of `erp_id`, in the source's order, then those known only from their accounts."""
    verdicts: dict[str, Judged] = {}
    for judged in judgement.judged:
        if split_key(judged.erp_id)[0] == erp_id:
            verdicts.setdefault(judged.erp_id, judged)
    duplicate = duplicate_reason(config)
    found: list[ContactExplanation] = []
    for record in judgement.kept:
        contact_id = record.contact_id or ""
        if any(c.contact_id == contact_id for c in found):  # the source repeats it: the first row is the one kept
            continue
        mine = verdicts[record.erp_id]
        item = ContactExplanation(contact_id=contact_id, name=record.contact_name, in_source=True,
                                  eligible=not mine.reasons, login=mine.login, reasons=list(mine.reasons),
                                  problems=list(record.problems))  # fmt: skip
        if not record.problems:
            item.rules = _verdicts(judgement.rules, record, item.problems)
        if duplicate in mine.reasons:
            holder = _login_holder(conn, judgement.judged, mine.login)
            item.login_held_by = holder if holder != ids_of(record.erp_id) else None
        found.append(item)
    for account in identities:  # a contact gone from the source: its account is removed as not in the source
        contact_id = account["contact_id"]
        if contact_id is not None and not any(c.contact_id == contact_id for c in found):
            found.append(ContactExplanation(contact_id=contact_id, name=account["contact_name"], in_source=False,
                                            eligible=False, login=account["login"]))  # fmt: skip
    for item in found:
        item.account = _account_of(identities, item.contact_id)
        item.quarantine = _quarantined(conn, identity_key(erp_id, item.contact_id))
    return found


def _account_of(identities: list[dict[str, Any]], contact_id: str) -> dict[str, Any] | None:
    """A contact's live account, else its newest identity (identities come oldest first)."""
    mine = [a for a in identities if a["contact_id"] == contact_id]
    if not mine:
        return None
    chosen = next((a for a in mine if a["status"] != "removed"), mine[-1])
    return {k: chosen[k] for k in ("id", "login", "status", "blocked")}


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One ERP customer's access status (with a contacts source: one contact person's, or a customer's own when
    no contact of it can have an account)."""

    erp_id: str
    name: str
    login: str
    eligible: bool
    reasons: str
    """Reason codes, comma-separated (stable, for scripts)."""
    why: str
    """The same reasons in words."""
    account_id: str
    account_status: str
    blocked: bool
    activated_at: str
    last_login_at: str
    contact_id: str | None = None
    """The contact person the row is for; None for a customer's own row (and for every row without contacts)."""
    contact_name: str | None = None


def report(config: Config, engine: Engine) -> Iterator[ReportRow]:
    """Access status of every customer the source returns, in source order. With a contacts source: one row per
    contact, grouped by customer, each customer's contacts after a row of its own when none of them can have an
    account (no contacts, the customer itself not eligible, or `no_eligible_contact`); contacts of customers the
    source does not return come last."""
    with engine.connect() as conn:
        newest: dict[str, dict[str, Any]] = {}
        for account in iter_accounts(conn):
            key = identity_key(account["erp_id"], account["contact_id"])
            current = newest.get(key)
            if current is None or current["status"] == "removed":
                newest[key] = account
        judgement = judge_source(config, conn)
    stated = {rule.name: rule.reason for rule in config.rules.exclude}

    def row(judged: Judged) -> ReportRow:
        account = newest.get(judged.erp_id, {})
        erp_id, contact_id = split_key(judged.erp_id)
        return ReportRow(
            erp_id=erp_id,
            name=judged.name,
            login=judged.login,
            eligible=not judged.reasons,
            reasons=", ".join(judged.reasons),
            why="; ".join(describe(r, config.rules.tag, stated) for r in judged.reasons),
            account_id=account.get("id", ""),
            account_status=account.get("status", "none"),
            blocked=bool(account.get("blocked")),
            activated_at=account["activated_at"].isoformat() if account.get("activated_at") else "",
            last_login_at=account["last_login_at"].isoformat() if account.get("last_login_at") else "",
            contact_id=contact_id,
            contact_name=judged.contact_name,
        )

    if judgement.join is None:
        for judged in judgement.judged:
            yield row(judged)
        return
    by_customer: dict[str, list[Judged]] = {}
    for judged in judgement.judged:
        by_customer.setdefault(split_key(judged.erp_id)[0], []).append(judged)
    names = judgement.names
    for erp_id, reasons in judgement.customers.items():
        contacts = by_customer.pop(erp_id, [])
        name = names.get(erp_id, "")
        if reasons or not contacts:
            yield row(Judged(erp_id, name, "", reasons or (NO_ELIGIBLE_CONTACT,)))
        for judged in contacts:
            yield row(judged._replace(name=name))
    for contacts in by_customer.values():  # contacts of customers the source does not return
        for judged in contacts:
            yield row(judged)
