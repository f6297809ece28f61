"""What a connector is: something that streams `Record`s out of an ERP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from integrator.records import Record

__all__ = ["Connector"]


class Connector(Protocol):
    """Streams customer records; never holds the whole source in memory.

    Raises `SourceError` (fatal: the run removes nobody) for a source that cannot be read, at any point of
    the stream, including mid-read. A row the connector cannot interpret is still yielded, with `problems`
    set, so it is quarantined and loses nothing.
    """

    def records(self, only: str | None = None) -> Iterator[Record]:
        """Every record of the source, or just the one whose erp_id is `only`."""
        ...

    def describe(self) -> str:
        """A one-line description for logs and `integrator check`, with no secret in it."""
        ...
