"""The tag rule: only customers carrying the access tag (Subiekt: cecha `b2b`) get an account."""

from __future__ import annotations

from integrator.records import Record
from integrator.rules.reasons import MISSING_TAG, describe

__all__ = ["TagRule", "normalize_tag"]


def normalize_tag(tag: str) -> str:
    """The configured tag in the connector's normal form: all whitespace removed, case-folded."""
    return "".join(tag.split()).casefold()


class TagRule:
    """Keeps a record whose tags contain the configured tag; " B2B " matches `b2b`, `b2bx` does not."""

    name = "tag"

    def __init__(self, tag: str) -> None:
        self.tag = tag
        # Record tags are already normalised by the connector, so the per-row check is one set lookup.
        self._wanted = normalize_tag(tag)
        if not self._wanted:
            raise ValueError("the tag must not be blank")

    def __call__(self, record: Record) -> str | None:
        return None if self._wanted in record.tags else MISSING_TAG

    def describe(self, code: str) -> str:
        """The human sentence for a reason this rule returns, naming the tag as configured."""
        return describe(code, tag=self.tag.strip())
