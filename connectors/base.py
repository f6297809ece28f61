"""What a connector is: something that streams `Record`s out of an ERP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from integrator.records import Record

__all__ = ["Connector", "SkipUnchanged"]

SkipUnchanged = Callable[[str, str, frozenset[str]], bool]
"""`skip(erp_id, digest, tags)`: True when the row needs no conversion or judging (known unchanged, or
untagged with nothing to remove); `tags` are normalised like `Record.tags`."""


class Connector(Protocol):
    """Streams customer records; never holds the whole source in memory.

    Raises `SourceError` (fatal: the run removes nobody) for a source that cannot be read, at any point of
    the stream, including mid-read. A row the connector cannot interpret is still yielded, with `problems`
    set, so it is quarantined and loses nothing.
    """

    def records(
        self, only: str | None = None, *, digest_key: bytes | None = None, skip: SkipUnchanged | None = None
    ) -> Iterator[Record]:
        """Every record of the source, or just the one whose erp_id is `only`.

        With `digest_key`, a connector may give each record the digest of its raw row (keyed, so a change in
        how rows are read changes every digest) and ask `skip(erp_id, digest, tags)` before converting a row:
        a row the caller needs no record for is then neither converted nor yielded. Connectors that cannot
        digest a row (one record from several rows) just leave `digest` empty.
        """
        ...

    def describe(self) -> str:
        """A one-line description for logs and `integrator check`, with no secret in it."""
        ...
