"""The ODBC fetch in a process of its own, so reading the ERP and judging its rows run on two cores at once.

Fetching through pyodbc holds the GIL for almost all of its work (a row is a dozen `SQLGetData` calls and as
many Python objects), so a reader *thread* only slows both sides down. A reader *process* fetches batch after
batch while the sync digests, judges and stages the previous one; on a million-row source that takes the
fetch off the sync's critical path.

The child (`run_child`, in a new interpreter) gets its job (the source config, `only`) on stdin and answers
on stdout with frames: the result's columns, then batches of rows as tuples, then the end, or an error that
says what went wrong in the same words the in-process connector would use (a `SourceError`, so a broken source
still removes nobody). Its log lines are handed to the parent, which logs them as its own (same format, same
run id). The reader queues at most `_AHEAD_ROWS` rows beyond what the parent has taken: memory does not grow
with the source.

The child dies with its parent (`PR_SET_PDEATHSIG` on Linux), and the parent kills the child when it stops
reading early (`check` samples a few rows) or fails.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from integrator.errors import ConfigError, SourceError, TransientSourceError

__all__ = ["Batch", "ReaderProcess"]

_HEADER = struct.Struct("<cI")
COLUMNS, MARSHALLED, PICKLED, LOG, ERROR, END = b"C", b"M", b"P", b"L", b"E", b"Z"
_ERRORS: dict[str, type[Exception]] = {
    "SourceError": SourceError,
    "TransientSourceError": TransientSourceError,
    "ConfigError": ConfigError,
}
_AHEAD_ROWS = 80_000
"""Rows the reader may have fetched beyond what the parent has taken (as whole batches, at least two)."""
_CHILD = "import integrator.connectors.read_ahead as r; r.run_child()"
"""The child's program (not `-m`: the package already imports this module, and runpy would warn)."""
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class Batch(NamedTuple):
    """One batch as the reader sent it."""

    rows: list[tuple[Any, ...]]
    digests: list[str] | None
    """The rows' digests, when the reader computed them (else the parent does)."""
    positions: list[int] | None
    """When the reader left rows out (`leave_out`): the position in the fetched batch of each row sent."""
    fetched: int
    """Rows fetched for this batch, those left out included."""


class ReaderProcess:
    """The parent's side: starts the reader, then hands out its columns and its batches of rows."""

    def __init__(
        self,
        source: Any,
        only: str | None,
        retry_wait: float,
        digest_key: bytes | None = None,
        leave_out: str | None = None,
    ) -> None:
        """`leave_out`: a normalised tag; rows with an erp_id whose tags lack it are not sent (see
        `connectors.base.LeaveOut`), and their batch says which rows it kept."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=1 << 20,
        )
        self._rows = 0
        job = {
            "source": source,
            "only": only,
            "retry_wait": retry_wait,
            "digest_key": digest_key,
            "leave_out": leave_out,
            "parent": os.getpid(),
        }
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            self._process.stdin.close()
        except OSError:  # the child is already gone; its end (or missing frames) is reported below
            pass
        assert self._process.stdout is not None
        self._out: IO[bytes] = self._process.stdout

    def columns(self) -> tuple[list[str], list[Any]]:
        """The result's column names and Python types (as in `cursor.description`), once the query ran."""
        kind, payload = self._next_frame()
        if kind != COLUMNS:
            raise SourceError(f"the ODBC reader process sent {kind!r} before the result's columns")
        names, types = pickle.loads(payload)
        return names, types

    def batches(self) -> Iterator[Batch]:
        """The result's batches until it ends; an error in the reader is raised here.

        With a `digest_key`, the reader digests a batch itself when it is well ahead of the parent (its queue is
        at least half full), taking work off the busier side. Otherwise the digests are None and the parent
        computes them.
        """
        loads = marshal.loads
        while True:
            kind, payload = self._next_frame()
            if kind == MARSHALLED:
                batch = Batch(*loads(payload))
            elif kind == PICKLED:
                batch = Batch(*pickle.loads(payload))
            elif kind == END:
                self._process.wait()
                return
            else:
                raise SourceError(f"the ODBC reader process sent an unexpected {kind!r} frame")
            self._rows += batch.fetched
            yield batch

    def close(self) -> None:
        """Stop the reader (if it still runs) and reap it."""
        if self._process.poll() is None:
            self._process.kill()
        self._out.close()
        self._process.wait()

    def __del__(self) -> None:  # records() was called but never iterated
        if getattr(self, "_process", None) is not None and self._process.returncode is None:
            with contextlib.suppress(Exception):  # at interpreter exit, half of the world may be gone
                self.close()

    def _next_frame(self) -> tuple[bytes, bytes]:
        """The next data frame; log frames are logged on the way, an error frame is raised."""
        while True:
            header = self._out.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise self._vanished()
            kind, size = _HEADER.unpack(header)
            payload = self._out.read(size)
            if len(payload) < size:
                raise self._vanished()
            if kind == LOG:
                _relay(*pickle.loads(payload))
            elif kind == ERROR:
                name, message = pickle.loads(payload)
                self._process.wait()
                raise _ERRORS.get(name, SourceError)(message)
            else:
                return kind, payload

    def _vanished(self) -> SourceError:
        status = self._process.wait()
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        return SourceError(f"the ODBC reader process {how} after {self._rows} rows, before the result ended")


def _relay(level: str, event: str, fields: dict[str, Any]) -> None:
    from integrator.connectors.odbc import _log

    getattr(_log(), level, _log().warning)(event, **fields)


# -- the child ---------------------------------------------------------------------------------------------


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
                write(_HEADER.pack(kind, len(payload)))
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


def _relay_logs(frames: _Frames) -> None:
    import structlog

    def send(_logger: Any, level: str, event_dict: dict[str, Any]) -> Any:
        fields = {key: value for key, value in event_dict.items() if key not in ("event", "component")}
        frames.send(LOG, pickle.dumps((level, str(event_dict.get("event")), fields)))
        raise structlog.DropEvent

    structlog.configure(processors=[send], cache_logger_on_first_use=False)


def _tagged_or_keyless(connector: Any, names: list[str], types: list[Any], tag: str) -> Callable[[Any], bool]:
    """Which rows to send when untagged customers may be left out: those carrying `tag`, and those without an
    erp_id (they are judged, and quarantined, in the parent). Tags and erp_ids are read exactly as the parent
    reads them."""
    from integrator.connectors.values import RowDigester

    reader = connector._reader(names, types)
    tags_of, tags_at = reader.tags_of, reader.tags_position
    erp_id_of = RowDigester(reader.erp_id_position, b"", types).erp_id_of
    return lambda row: tag in tags_of(row[tags_at]) or not erp_id_of(row)


def main() -> int:
    """Read the job from stdin, stream the result to stdout as frames."""
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 20)
    os.dup2(2, 1)  # anything else printing (a driver, a warning) goes to stderr, not into the frames
    job = pickle.load(sys.stdin.buffer)
    _die_with_parent(job["parent"])
    from integrator.connectors.odbc import BEFORE_FIRST_LOG, OdbcConnector, read_chunk, redact_secrets, secrets_in
    from integrator.connectors.values import RowDigester

    frames = _Frames(out, read_chunk(job["source"].fetch_size))
    BEFORE_FIRST_LOG.append(lambda: _relay_logs(frames))

    try:
        connector = OdbcConnector(job["source"], retry_wait=job["retry_wait"])
        with connector.open_result(job["only"]) as (names, types, batches):
            frames.send(COLUMNS, pickle.dumps((names, types)))
            key = job["digest_key"]
            digest = None if key is None else RowDigester(0, key, types).digest
            wanted = None if job["leave_out"] is None else _tagged_or_keyless(connector, names, types, job["leave_out"])
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


def run_child() -> None:
    """The reader process's entry point (see `_CHILD`)."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # the parent stopped reading (it had enough rows, or it failed)
        os._exit(0)
