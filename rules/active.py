"""The active rule: a customer marked inactive in the ERP gets no account (and loses a live one)."""

from __future__ import annotations

from integrator.records import Record
from integrator.rules.reasons import DESCRIPTIONS, INACTIVE

__all__ = ["ActiveRule"]


class ActiveRule:
    """Excludes records whose `active` flag is false (`inactive`); a missing column reads as active."""

    name = "active"

    def __call__(self, record: Record) -> str | None:
        return None if record.active else INACTIVE

    def describe(self, code: str) -> str:
        """The human sentence for a reason this rule returns."""
        return DESCRIPTIONS[code]
