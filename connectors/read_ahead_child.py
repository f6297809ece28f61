"""The ODBC reader process's side of `read_ahead`: fetch the result and stream it to the parent as frames.

`run` (in a new interpreter, see `read_ahead._CHILD`) reads its job (the source config, `only`, the digest key,
the tag rows must carry, or that it reads the contacts query instead) from stdin and answers on stdout with
frames: the result's columns, then batches of rows as tuples, then the end, or an error that says what went wrong
in the same words the in-process fetch would use. Its warnings travel as frames too, and the parent logs them as
its own. The process imports no logging library and nothing of the parent's side: it starts in a fraction of the
time, and the parent waits for its first rows.

This module is also the frame protocol both sides speak; the parent (`read_ahead`) imports it, never the reverse.
"""

from __future__ import annotations

import marshal
import os
import pickle
import queue
import signal
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from integrator.errors import ConfigError, SourceError

if TYPE_CHECKING:
    from integrator.connectors.values import RowReader

__all__ = ["COLUMNS", "END", "ERROR", "HEADER", "LOG", "MARSHALLED", "PICKLED", "run"]

HEADER = struct.Struct("<cI")
"""A frame is its kind (one byte), its payload's length, then the payload."""
COLUMNS, MARSHALLED, PICKLED, LOG, ERROR, END = b"C", b"M", b"P", b"L", b"E", b"Z"
_AHEAD_ROWS = 80_000
"""Rows the reader may have fetched beyond what the parent has taken (as whole batches, at least two)."""


class _Frames:
    """The child's stdout, as frames, written by a thread of their own.

    The queue lets the fetch run up to `_AHEAD_ROWS` rows ahead of the parent (while it loads its ledger, say)
    instead of stalling on a full pipe; `write` releases the GIL, so the thread costs the fetch nothing.
    """

    def __init__(self, stream: IO[bytes], batch_rows: int) -> None:
        self._stream = stream
        ahead = max(2, _AHEAD_ROWS // max(1, batch_rows))
        self._queue: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue(maxsize=ahead)
        self._digest_from = ahead // 2
        """Queued batches from which on the reader digests what it sends (a full queue alone is rarely seen:
        the reader waits on it, and the parent has taken a batch by the time it wakes)."""
        self._broken: BaseException | None = None
        self._writer = threading.Thread(target=self._write_all, name="frames", daemon=True)
        self._writer.start()

    def send(self, kind: bytes, payload: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        self._queue.put((kind, payload))

    def warn(self, event: str, **fields: Any) -> None:
        """A warning for the parent to log as its own (level, event and fields as the fetch gave them)."""
        self.send(LOG, pickle.dumps(("warning", event, fields)))

    def rows(
        self,
        batch: Sequence[Any],
        digest: Callable[[Sequence[Any]], str] | None,
        wanted: Callable[[Any], bool] | None = None,
    ) -> None:
        """Send a batch, with its digests when there is a key and the parent is behind (the queue is at least half
        full): the two processes then share the digesting, and neither waits long for the other. With `wanted`,
        only the rows it accepts are sent, with their positions in the batch."""
        fetched, positions = len(batch), None
        if wanted is not None:
            positions = [at for at, row in enumerate(batch) if wanted(row)]
            if len(positions) == fetched:
                positions = None
        rows = [tuple(row) for row in batch] if positions is None else [tuple(batch[at]) for at in positions]
        digests = list(map(digest, rows)) if digest is not None and self._queue.qsize() >= self._digest_from else None
        frame = (rows, digests, positions, fetched)
        try:
            self.send(MARSHALLED, marshal.dumps(frame, 2))  # version 2: no back-references, faster
        except ValueError:  # Decimal, dates: values marshal cannot carry
            self.send(PICKLED, pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._writer.join()
        if self._broken is not None:
            raise self._broken

    def _write_all(self) -> None:
        write, flush = self._stream.write, self._stream.flush
        while (frame := self._queue.get()) is not None:
            if self._broken is not None:
                continue  # keep draining so the fetch never blocks on a dead parent
            kind, payload = frame
            try:
                write(HEADER.pack(kind, len(payload)))
                write(payload)
                flush()
            except OSError as exc:  # the parent stopped reading
                self._broken = exc


def _die_with_parent(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (and stops this process), no traceback here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _tagged_or_keyless(reader: RowReader, types: list[Any], tag: str) -> Callable[[Any], bool]:
    """Which rows to send when untagged customers may be left out: those carrying `tag`, and those without an
    erp_id (they are judged, and quarantined, in the parent). Tags and erp_ids are read exactly as the parent
    reads them (`reader` is the source's `RowReader`)."""
    from integrator.connectors.values import RowDigester

    tags_of, tags_at = reader.tags_of, reader.tags_position
    erp_id_of = RowDigester(reader.erp_id_position, b"", types).erp_id_of
    return lambda row: tag in tags_of(row[tags_at]) or not erp_id_of(row)


def main() -> int:
    """Read the job from stdin, stream the result to stdout as frames."""
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 20)
    os.dup2(2, 1)  # anything else printing (a driver, a warning) goes to stderr, not into the frames
    job = pickle.load(sys.stdin.buffer)
    _die_with_parent(job["parent"])
    from integrator.connectors.odbc_fetch import OdbcFetch, read_chunk, redact_secrets, secrets_in
    from integrator.connectors.values import RowDigester

    frames = _Frames(out, read_chunk(job["source"].fetch_size))
    try:
        fetch = OdbcFetch(job["source"], retry_wait=job["retry_wait"])
        if job.get("contacts"):
            result = fetch.open_contacts(frames.warn)
        else:
            result = fetch.open_result(job["only"], frames.warn)
        with result as (names, types, batches):
            frames.send(COLUMNS, pickle.dumps((names, types)))
            key = job["digest_key"]
            digest = None if key is None else RowDigester(0, key, types).digest
            tag = job["leave_out"]
            wanted = None if tag is None else _tagged_or_keyless(fetch.row_reader(names, types), types, tag)
            for batch in batches:
                frames.rows(batch, digest, wanted)
    except (SourceError, ConfigError) as exc:
        frames.send(ERROR, pickle.dumps((type(exc).__name__, str(exc))))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a source failure, never a partial read
        secrets = secrets_in(job["source"].connection_string or "")
        message = redact_secrets(f"the ODBC reader failed: {type(exc).__name__}: {exc}", secrets)
        frames.send(ERROR, pickle.dumps(("SourceError", message)))
    frames.send(END, b"")
    frames.close()
    return 0


def run() -> None:
    """The reader process's entry point (see `read_ahead._CHILD`)."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # the parent stopped reading (it had enough rows, or it failed)
        os._exit(0)
