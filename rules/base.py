"""What a rule is: a callable that reads a record and may exclude it, with a reason code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from integrator.records import Record

__all__ = ["KEEP", "Rule", "Verdict"]


class Rule(Protocol):
    """Returns None to keep the record, or a short reason code (e.g. `missing_tag`) to exclude it."""

    name: str
    """Shown by `explain`, e.g. `tag`, `active`, `email`, `rule:vip`."""

    def __call__(self, record: Record) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rule engine's answer for one record: keep it, or the reason codes why not."""

    keep: bool
    reasons: tuple[str, ...] = ()


KEEP = Verdict(True)
