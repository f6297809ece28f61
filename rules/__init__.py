"""Which ERP customers may have a B2B account, and why the others may not.

Rules are small callables returning a reason code or None (see `rules.base`); the engine runs them all and
collects every reason, so a report can say everything that keeps a customer out.
"""

from __future__ import annotations

from integrator.rules.active import ActiveRule
from integrator.rules.base import KEEP, Rule, Verdict
from integrator.rules.email import EmailRule, fast_accepts, is_valid_email
from integrator.rules.engine import (
    RuleEngine,
    RuleError,
    RuleResult,
    build_contact_engine,
    build_customer_engine,
    build_engine,
)
from integrator.rules.exclude import RULE_KINDS, EqualsRule, FieldRule, InRule, MatchesRule, exclude_rule, rule_kind
from integrator.rules.reasons import (
    CONTACT_INACTIVE,
    DESCRIPTIONS,
    DUPLICATE_EMAIL,
    DUPLICATE_ERP_ID,
    DUPLICATE_USERNAME,
    INACTIVE,
    INVALID_EMAIL,
    MISSING_EMAIL,
    MISSING_TAG,
    MISSING_USERNAME,
    NO_ACCESS,
    NO_ELIGIBLE_CONTACT,
    UNKNOWN_CUSTOMER,
    describe,
    rule_code,
)
from integrator.rules.tag import TagRule, normalize_tag

__all__ = [
    "CONTACT_INACTIVE",
    "DESCRIPTIONS",
    "DUPLICATE_USERNAME",
    "MISSING_USERNAME",
    "NO_ACCESS",
    "NO_ELIGIBLE_CONTACT",
    "UNKNOWN_CUSTOMER",
    "build_contact_engine",
    "build_customer_engine",
    "DUPLICATE_EMAIL",
    "DUPLICATE_ERP_ID",
    "INACTIVE",
    "INVALID_EMAIL",
    "KEEP",
    "MISSING_EMAIL",
    "MISSING_TAG",
    "RULE_KINDS",
    "ActiveRule",
    "EmailRule",
    "EqualsRule",
    "FieldRule",
    "InRule",
    "MatchesRule",
    "Rule",
    "RuleEngine",
    "RuleError",
    "RuleResult",
    "TagRule",
    "Verdict",
    "build_engine",
    "describe",
    "exclude_rule",
    "fast_accepts",
    "is_valid_email",
    "normalize_tag",
    "rule_code",
    "rule_kind",
]
