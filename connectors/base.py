"""What a connector is: something that streams `Record`s (and, where configured, `Contact`s) out of an ERP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from integrator.records import Contact, Record

__all__ = ["Connector", "LeaveOut", "SkipUnchanged"]

SkipUnchanged = Callable[[str, str, frozenset[str]], bool]
"""`skip(erp_id, digest, tags)`: True when the row needs no conversion or judging (known unchanged, or
untagged with nothing to remove); `tags` are normalised like `Record.tags`."""


@dataclass(frozen=True, slots=True)
class LeaveOut:
    """Rows a connector may leave out before they are even handed over: those with an erp_id whose tags lack
    `tag` (normalised like `Record.tags`).

    The sync asks for this when its store holds no live account (a first sync): such a row can then only be
    counted as `missing_tag`, so a reader in another process need not send it at all. The connector reports
    how many rows it left out through `count`. A connector may ignore the offer; `skip` then counts them. One
    that takes it need not ask `skip` about the rows it does yield: with no account, none is unchanged.
    """

    tag: str
    count: Callable[[int], None]


class Connector(Protocol):
    """Streams customer records; never holds the whole source in memory.

    Raises `SourceError` (fatal: the run removes nobody) for a source that cannot be read, at any point of
    the stream, including mid-read. A row the connector cannot interpret is still yielded, with `problems`
    set, so it is quarantined and loses nothing.
    """

    def records(
        self,
        only: str | None = None,
        *,
        digest_key: bytes | None = None,
        skip: SkipUnchanged | None = None,
        leave_out: LeaveOut | None = None,
    ) -> Iterator[Record]:
        """Every record of the source, or just the one whose erp_id is `only`.

        With `digest_key`, a connector may give each record the digest of its raw row (keyed, so a change in
        how rows are read changes every digest) and ask `skip(erp_id, digest, tags)` before converting a row:
        a row the caller needs no record for is then neither converted nor yielded. Connectors that cannot
        digest a row (one record from several rows) just leave `digest` empty. `leave_out`: see `LeaveOut`.
        """
        ...

    @property
    def has_contacts(self) -> bool:
        """Whether the source has contact persons (`[source] contacts_query` or `contacts_path`)."""
        ...

    def contacts(self, *, digest_key: bytes | None = None) -> Iterator[Contact]:
        """Every contact person of the source, streamed, each with the keyed digest of its raw row when
        `digest_key` is given. A contact row the connector cannot interpret is still yielded, with `problems`.
        Raises `ConfigError` (when called) for a source without contacts, `SourceError` for one that cannot
        be read."""
        ...

    def describe(self) -> str:
        """A one-line description for logs and `integrator check`, with no secret in it."""
        ...
