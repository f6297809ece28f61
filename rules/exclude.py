"""Consultant rules (`[[rules.exclude]]`): leave out customers whose field equals / is in / matches a value.

One small class per kind, chosen once when the engine is built, so a row pays for its own test only.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import ClassVar

from integrator.config import ExcludeRule
from integrator.errors import ConfigError
from integrator.records import RECORD_COLUMNS, Record
from integrator.rules.base import Rule
from integrator.rules.reasons import describe, rule_code
from integrator.rules.tag import normalize_tag

__all__ = [
    "RULE_KINDS",
    "EqualsRule",
    "FieldRule",
    "InRule",
    "MatchesRule",
    "exclude_rule",
    "rule_kind",
    "spec_kind",
]


def _fold(text: str) -> str:
    return text.strip().casefold()


def _decimal_text(value: Decimal) -> str:
    # "12.50" from one database and "12.5" from another are the same discount.
    return format(value.normalize(), "f") if value.is_finite() else str(value)


def _as_text(value: object) -> str:
    """A record value as the text a consultant would write in the config."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    return str(value)


class FieldRule:
    """Shared part of the consultant rules: read one field, test its text, answer `rule:<name>` on a hit.

    A field that is None never matches. `tags` (a set) matches when any one tag does.
    """

    kind: ClassVar[str]

    def __init__(self, name: str, field: str, reason: str = "") -> None:
        if field not in RECORD_COLUMNS:
            raise ValueError(f"unknown field {field!r}; valid: {', '.join(RECORD_COLUMNS)}")
        self.name = rule_code(name)
        """Both the rule's name in `explain` and the reason code it returns."""
        self.rule_name = name
        self.field = field
        self.stated = reason
        self._get = operator.itemgetter(Record._fields.index(field))
        self._tags = field == "tags"

    def _expected(self, value: str) -> str:
        """A configured value in the form the field's text is compared in."""
        if self._tags:
            return normalize_tag(value)
        if self.field == "discount":
            try:
                return _decimal_text(Decimal(value.strip()))
            except ArithmeticError:
                pass
        return _fold(value)

    def _hit(self, text: str) -> bool:
        raise NotImplementedError

    def __call__(self, record: Record) -> str | None:
        value = self._get(record)
        if value is None:
            return None
        hit = any(self._hit(tag) for tag in value) if self._tags else self._hit(_as_text(value))
        return self.name if hit else None

    def describe(self, code: str) -> str:
        """The rule's stated reason, or a sentence naming the rule when none was given."""
        return describe(code, stated={self.rule_name: self.stated})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rule_name!r}, field={self.field!r})"


class EqualsRule(FieldRule):
    """Excludes when the field, trimmed, equals the value case-insensitively."""

    kind = "equals"

    def __init__(self, name: str, field: str, value: str, reason: str = "") -> None:
        super().__init__(name, field, reason)
        self._value = self._expected(value)

    def _hit(self, text: str) -> bool:
        return _fold(text) == self._value


class InRule(FieldRule):
    """Excludes when the field, trimmed, is one of the values, case-insensitively."""

    kind = "in"

    def __init__(self, name: str, field: str, value: Iterable[str], reason: str = "") -> None:
        super().__init__(name, field, reason)
        self._values = frozenset(self._expected(v) for v in value)

    def _hit(self, text: str) -> bool:
        return _fold(text) in self._values


class MatchesRule(FieldRule):
    """Excludes when the regular expression is found in the trimmed field (`re.search`, case-sensitive)."""

    kind = "matches"

    def __init__(self, name: str, field: str, value: str, reason: str = "") -> None:
        super().__init__(name, field, reason)
        self._search = re.compile(value).search

    def _hit(self, text: str) -> bool:
        return self._search(text.strip()) is not None


RULE_KINDS: dict[str, Callable[..., Rule]] = {
    EqualsRule.kind: EqualsRule,
    InRule.kind: InRule,
    MatchesRule.kind: MatchesRule,
}
"""Consultant rule kinds by the config key that selects them."""


def rule_kind(kind: str) -> Callable[..., Rule]:
    """The rule class of a kind; an unknown kind is a config error that lists the valid ones."""
    try:
        return RULE_KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown rule kind {kind!r}; valid: {', '.join(sorted(RULE_KINDS))}") from None


def spec_kind(spec: ExcludeRule) -> str:
    """Which test a config rule asks for: the one of `equals`, `in`, `matches` it sets."""
    tests = (("equals", spec.equals), ("in", spec.in_), ("matches", spec.matches))
    given = [key for key, value in tests if value is not None]
    return "+".join(given) or "(none)"


def exclude_rule(spec: ExcludeRule) -> Rule:
    """Build the rule a `[[rules.exclude]]` table describes."""
    kind = spec_kind(spec)
    value = {"equals": spec.equals, "in": spec.in_, "matches": spec.matches}.get(kind)
    return rule_kind(kind)(spec.name, spec.field, value, spec.reason)
