"""New identity ids: random (version 4) UUIDs, minted for a whole run at once and handed out in ascending order.

Each id is drawn independently from `os.urandom`, exactly as `uuid.uuid4()` draws one; only the order in which
a run hands them out is chosen. A run's creates get them in ascending order, so its inserts land at the right
end of every index keyed by account id (the accounts' primary key, the events' and the outbox's account
indexes) instead of at random pages. On an initial sync of 650,000 accounts into SQLite that halves the apply
(9.0 s → 4.6 s in a replay of the same statements), since each batch's transaction then writes a few fresh
index pages rather than nearly every page of three random indexes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["sorted_identity_ids"]

_VERSION_4 = bytes((byte & 0x0F) | 0x40 for byte in range(256))
"""Byte 6 of a random UUID with its high nibble set to the version, 4 (RFC 9562), as a `translate` table."""
_VARIANT_10 = bytes((byte & 0x3F) | 0x80 for byte in range(256))
"""Byte 8 with its two high bits set to the variant, binary 10."""


def sorted_identity_ids(count: int, chunk: int = 50_000) -> Iterator[list[str]]:
    """`count` new random UUIDs in ascending order, as canonical strings, `chunk` at a time.

    Version and variant bits are set in the random bytes of all of them first (one `translate` per byte
    column), then the ids are sorted at once (the order must hold across chunks); the strings, which take four
    times the memory, are made a chunk at a time.
    """
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT_10)
    data = bytes(raw)
    del raw
    keys = sorted([data[start : start + 16] for start in range(0, 16 * count, 16)])
    del data
    for start in range(0, count, chunk):
        yield [
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            for h in [key.hex() for key in keys[start : start + chunk]]
        ]
