"""Who has access and why: `explain` for one customer, `report` for every customer of the source.

Both judge the source as it is now with the same rules and login contest the sync uses (a `Reconciler` that
stages nothing), and join the answer with the accounts in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from integrator.config import Config
from integrator.connectors import make_connector
from integrator.reconcile import Reconciler
from integrator.records import normalize_login
from integrator.rules import build_engine
from integrator.rules.engine import RuleError, RuleResult
from integrator.rules.reasons import DUPLICATE_EMAIL, describe
from integrator.store.ledger import StoreLookups, load_live_ledger
from integrator.store.queries import account_events_of, iter_accounts
from integrator.store.schema import quarantine, run_actions

__all__ = ["Explanation", "ReportRow", "explain", "report"]


@dataclass
class Explanation:
    """Everything known about one customer's access."""

    erp_id: str
    in_source: bool
    eligible: bool
    rules: list[RuleResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    login: str | None = None
    login_held_by: str | None = None
    """Another customer's live account holding this login, if any (the duplicate_email case)."""
    identities: list[dict[str, Any]] = field(default_factory=list)
    last_actions: list[dict[str, Any]] = field(default_factory=list)
    quarantine: dict[str, Any] | None = None


def explain(config: Config, engine: Engine, erp_id: str) -> Explanation:
    """Every rule's verdict for `erp_id` now, who holds its login, its identities and their history."""
    rules = build_engine(config.rules)
    record = next(iter(make_connector(config.source).records(only=erp_id)), None)
    result = Explanation(erp_id=erp_id, in_source=record is not None, eligible=False)
    if record is not None:
        result.login = normalize_login(record.email)
        result.problems = list(record.problems)
        if not record.problems:
            try:
                result.rules = rules.explain(record)
            except RuleError as exc:
                result.problems.append(str(exc))
        result.eligible = not result.problems and all(r.passed for r in result.rules)
    with engine.connect() as conn:
        if result.login:
            holder = conn.execute(
                sa.text("SELECT erp_id FROM accounts WHERE live_login = :login"), {"login": result.login}
            ).scalar()
            if holder is not None and holder != erp_id:
                result.login_held_by = holder
                result.eligible = False
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
    judged: list[tuple[str, str, str, tuple[str, ...]]] = []
    with engine.connect() as conn:
        ledger = load_live_ledger(conn)
        reconciler = Reconciler(ledger, rules, lambda *args: None, lookups=StoreLookups(conn.engine, ledger))
        newest: dict[str, dict[str, Any]] = {}
        for account in iter_accounts(conn):
            current = newest.get(account["erp_id"])
            if current is None or current["status"] == "removed":
                newest[account["erp_id"]] = account
        for record in make_connector(config.source).records():
            reconciler.feed(record)
            if record.problems:
                reasons: tuple[str, ...] = ("unreadable: " + "; ".join(record.problems),)
            else:
                try:
                    reasons = rules.evaluate(record).reasons
                except RuleError as exc:
                    reasons = (str(exc),)
            judged.append((record.erp_id, record.name or "", normalize_login(record.email), reasons))
        plan = reconciler.finish()
    stated = {rule.name: rule.reason for rule in config.rules.exclude}
    losers = {r.erp_id for r in plan.rejections if DUPLICATE_EMAIL in r.reasons}
    for erp_id, name, login, reasons in judged:
        if erp_id in losers and DUPLICATE_EMAIL not in reasons:
            reasons = (*reasons, DUPLICATE_EMAIL)
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
