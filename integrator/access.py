"""Who has access and why: `explain` for one customer, `report` for every customer of the source.

Both judge the source as it is now with the same rules and login contest the sync uses (a `Reconciler` that
stages nothing), and join the answer with the accounts in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.config import Config
from integrator.connectors import make_connector
from integrator.identity import login_function
from integrator.reconcile import Reconciler
from integrator.records import Record
from integrator.rules import build_engine
from integrator.rules.engine import RuleEngine, RuleError, RuleResult
from integrator.rules.reasons import DUPLICATE_EMAIL, DUPLICATE_USERNAME, describe
from integrator.store.ledger import StoreLookups, load_live_ledger
from integrator.store.queries import account_events_of, iter_accounts
from integrator.store.schema import quarantine, run_actions

__all__ = ["Explanation", "Judged", "ReportRow", "duplicate_reason", "explain", "judge_source", "report"]


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


class Judged(NamedTuple):
    """One source record as a sync would judge it now (a tuple: `report` keeps one per source row)."""

    erp_id: str
    name: str
    login: str
    reasons: tuple[str, ...]
    """Empty when eligible; else the rules' reasons, `unreadable: ...`, or the contest's duplicate reason."""


def duplicate_reason(config: Config) -> str:
    """The reason the login contest's losers get: `duplicate_email`, or `duplicate_username` for username logins."""
    return DUPLICATE_USERNAME if config.accounts.login == "username" else DUPLICATE_EMAIL


def judge_source(
    config: Config, conn: sa.Connection, rules: RuleEngine, *, keep_record: str | None = None
) -> tuple[list[Judged], Record | None]:
    """Every record of the source judged with the sync's rules and login contest (a `Reconciler` over the live
    accounts that stages nothing), in source order; and the first record of `keep_record`, if asked for."""
    ledger = load_live_ledger(conn)
    duplicate = duplicate_reason(config)
    login_of = login_function(config.accounts.login)
    reconciler = Reconciler(
        ledger,
        rules,
        lambda *args: None,
        lookups=StoreLookups(conn.engine, ledger),
        login=login_of,
        duplicate_reason=duplicate,
    )
    judged: list[Judged] = []
    kept: Record | None = None
    for record in make_connector(config.source).records():
        reconciler.feed(record)
        if record.problems:
            reasons: tuple[str, ...] = ("unreadable: " + "; ".join(record.problems),)
        else:
            try:
                reasons = rules.evaluate(record).reasons
            except RuleError as exc:
                reasons = (str(exc),)
        judged.append(Judged(record.erp_id, record.name or "", login_of(record), reasons))
        if kept is None and record.erp_id == keep_record:
            kept = record
    plan = reconciler.finish()
    losers = {r.erp_id for r in plan.rejections if duplicate in r.reasons}
    if losers:
        judged = [
            j if j.erp_id not in losers or duplicate in j.reasons else j._replace(reasons=(*j.reasons, duplicate))
            for j in judged
        ]
    return judged, kept


def explain(config: Config, engine: Engine, erp_id: str) -> Explanation:
    """Every rule's verdict for `erp_id` now and the login contest's, run over the whole source as a sync runs it
    (so a customer that loses a shared e-mail is `duplicate_email` even before any sync), who keeps its login if
    it lost, its identities and their history."""
    rules = build_engine(config.rules)
    with engine.connect() as conn:
        judged, record = judge_source(config, conn, rules, keep_record=erp_id)
    result = Explanation(erp_id=erp_id, in_source=record is not None, eligible=False)
    if record is not None:
        mine = next(j for j in judged if j.erp_id == erp_id)
        result.login = mine.login
        result.reasons = list(mine.reasons)
        result.problems = list(record.problems)
        if not record.problems:
            try:
                result.rules = rules.explain(record)
            except RuleError as exc:
                result.problems.append(str(exc))
        result.eligible = not mine.reasons
    with engine.connect() as conn:
        if result.login and duplicate_reason(config) in result.reasons:
            winner = next((j.erp_id for j in judged if j.login == result.login and not j.reasons), None)
            if winner is None:  # kept by a live account this run leaves alone (its record quarantined, say)
                winner = conn.execute(
                    sa.text("SELECT erp_id FROM accounts WHERE live_login = :login"), {"login": result.login}
                ).scalar()
            result.login_held_by = winner if winner != erp_id else None
        for account in iter_accounts(conn, erp_id=erp_id):
            account["events"] = account_events_of(conn, account_id=account["id"])
            result.identities.append(account)
        result.last_actions = [
            dict(r)
            for r in conn.execute(
                sa.select(run_actions.c.run_id, run_actions.c.action, run_actions.c.reason)
                .where(run_actions.c.erp_id == erp_id)
                .order_by(run_actions.c.id.desc())
                .limit(10)
            ).mappings()
        ]
        row = conn.execute(sa.select(quarantine).where(quarantine.c.erp_id == erp_id)).mappings().first()
        result.quarantine = dict(row) if row else None
    return result


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One ERP customer's access status."""

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


def report(config: Config, engine: Engine) -> Iterator[ReportRow]:
    """Access status of every customer the source returns, in source order."""
    rules = build_engine(config.rules)
    with engine.connect() as conn:
        newest: dict[str, dict[str, Any]] = {}
        for account in iter_accounts(conn):
            current = newest.get(account["erp_id"])
            if current is None or current["status"] == "removed":
                newest[account["erp_id"]] = account
        judged, _ = judge_source(config, conn, rules)
    stated = {rule.name: rule.reason for rule in config.rules.exclude}
    for erp_id, name, login, reasons in judged:
        account = newest.get(erp_id, {})
        yield ReportRow(
            erp_id=erp_id,
            name=name,
            login=login,
            eligible=not reasons,
            reasons=", ".join(reasons),
            why="; ".join(describe(r, config.rules.tag, stated) for r in reasons),
            account_id=account.get("id", ""),
            account_status=account.get("status", "none"),
            blocked=bool(account.get("blocked")),
            activated_at=account["activated_at"].isoformat() if account.get("activated_at") else "",
            last_login_at=account["last_login_at"].isoformat() if account.get("last_login_at") else "",
        )
