"""The rule engine: runs every rule on a record and collects every reason it is left out.

Called once per ERP row (a million per sync), so the common path, a record that passes, allocates nothing.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from integrator.config import RulesConfig
from integrator.errors import ConfigError, IntegratorError
from integrator.records import Record
from integrator.rules.active import ActiveRule
from integrator.rules.base import KEEP, Rule, Verdict
from integrator.rules.contact import ContactRule, KnownCustomerRule, UsernameRule
from integrator.rules.email import EmailRule
from integrator.rules.exclude import exclude_rule
from integrator.rules.reasons import describe
from integrator.rules.tag import TagRule

__all__ = [
    "RuleEngine",
    "RuleError",
    "RuleResult",
    "build_contact_engine",
    "build_customer_engine",
    "build_engine",
    "contact_engine",
]


class RuleError(IntegratorError):
    """A rule raised on a record: the sync quarantines that record with this message and goes on."""

    def __init__(self, rule: str, erp_id: str, original: BaseException) -> None:
        self.rule = rule
        self.erp_id = erp_id
        self.original = original
        problem = f"{type(original).__name__}: {original}"
        super().__init__(f"rule {rule!r} failed on customer {erp_id!r}: {problem}")


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's verdict on one record, as `explain` shows it."""

    rule: str
    """The rule's name: `tag`, `active`, `email`, `rule:<name>`."""
    passed: bool
    reason: str | None = None
    """The reason code when the rule excludes the record."""
    description: str | None = None
    """The reason in words, for people."""


class RuleEngine:
    """Runs rules in order; a record is kept when none of them gives a reason."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        # Verdicts with a single reason (most rejections) are shared, like KEEP, instead of built per row.
        self._single: dict[str, Verdict] = {}

    def evaluate(self, record: Record) -> Verdict:
        """Every failing rule's reason, in rule order; `KEEP` when all pass. A raising rule → `RuleError`."""
        reasons: list[str] | None = None
        for rule in self.rules:
            try:
                reason = rule(record)
            except Exception as exc:
                raise RuleError(rule.name, record.erp_id, exc) from exc
            if reason is not None:
                if reasons is None:
                    reasons = [reason]
                else:
                    reasons.append(reason)
        if reasons is None:
            return KEEP
        if len(reasons) == 1:
            verdict = self._single.get(reasons[0])
            if verdict is None:
                verdict = self._single[reasons[0]] = Verdict(False, (reasons[0],))
            return verdict
        return Verdict(False, tuple(reasons))

    def explain(self, record: Record) -> list[RuleResult]:
        """Each rule's verdict with the reason in words; a raising rule raises `RuleError` like `evaluate`."""
        results = []
        for rule in self.rules:
            try:
                reason = rule(record)
            except Exception as exc:
                raise RuleError(rule.name, record.erp_id, exc) from exc
            if reason is None:
                results.append(RuleResult(rule.name, True))
            else:
                describer = getattr(rule, "describe", None)
                text = describer(reason) if callable(describer) else describe(reason)
                results.append(RuleResult(rule.name, False, reason, text))
        return results


def build_engine(config: RulesConfig, *, login: str = "email") -> RuleEngine:
    """The engine a config asks for: tag, active (if required), e-mail, the username when logins are usernames
    (`[accounts] login`), then the consultant rules in order."""
    rules: list[Rule] = [TagRule(config.tag)]
    if config.require_active:
        rules.append(ActiveRule())
    rules.append(EmailRule())
    if login == "username":
        rules.append(UsernameRule())
    return RuleEngine(rules + _consultant_rules(config))


def build_contact_engine(config: RulesConfig, customers: Container[str], *, login: str = "email") -> RuleEngine:
    """The engine for contacts (one record per contact, its customer's fields and its own): the customer is
    known, carries the tag, is active; the contact is active and has access; its e-mail (and username) is
    good; then the consultant rules."""
    rules: list[Rule] = [KnownCustomerRule(customers), TagRule(config.tag)]
    if config.require_active:
        rules.append(ActiveRule())
    rules += [ContactRule(), EmailRule()]
    if login == "username":
        rules.append(UsernameRule())
    return RuleEngine(rules + _consultant_rules(config))


def contact_engine(login: str = "email") -> RuleEngine:
    """A contact's own rules alone (active, access, e-mail, username), for `integrator check`, which shows the
    first contacts without reading every customer."""
    rules: list[Rule] = [ContactRule(), EmailRule()]
    if login == "username":
        rules.append(UsernameRule())
    return RuleEngine(rules)


def build_customer_engine(config: RulesConfig) -> RuleEngine:
    """The rules a customer itself meets when its contacts get the accounts (tag, active, the consultant's):
    an eligible customer none of whose contacts is eligible is reported as `no_eligible_contact`."""
    rules: list[Rule] = [TagRule(config.tag)]
    if config.require_active:
        rules.append(ActiveRule())
    return RuleEngine(rules + _consultant_rules(config))


def _consultant_rules(config: RulesConfig) -> list[Rule]:
    rules: list[Rule] = []
    seen: set[str] = set()
    for spec in config.exclude:
        # Two rules of one name would report the same `rule:<name>` code for different reasons.
        if spec.name in seen:
            raise ConfigError("invalid rules configuration", [f"[rules.exclude] rule name {spec.name!r} is used twice"])
        seen.add(spec.name)
        rules.append(exclude_rule(spec))
    return rules
