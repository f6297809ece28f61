"""Time in one convention: naive UTC datetimes, identical on every store backend."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    """Now, as naive UTC (the store keeps every timestamp that way)."""
    return datetime.now(UTC).replace(tzinfo=None)
