"""The ODBC fetch in a process of its own, so reading the ERP and judging its rows run on two cores at once.

Fetching through pyodbc holds the GIL for almost all of its work (a row is a dozen `SQLGetData` calls and as
many Python objects), so a reader *thread* only slows both sides down. A reader *process* fetches batch after
batch while the sync digests, judges and stages the previous one; on a million-row source that takes the
fetch off the sync's critical path.

This is the parent's side. The child (`read_ahead_child`, in a new interpreter) gets its job (the source config,
`only`) on stdin and answers on stdout with frames: the result's columns, then batches of rows as tuples, then
the end, or an error that says what went wrong in the same words the in-process fetch would use (a
`SourceError`, so a broken source still removes nobody). Its warnings are handed to the parent, which logs them
as its own (same format, same run id). The reader queues at most 80,000 rows beyond what the parent has taken
(`read_ahead_child._AHEAD_ROWS`): memory does not grow with the source.

The child dies with its parent (`PR_SET_PDEATHSIG` on Linux), and the parent kills the child when it stops
reading early (`check` samples a few rows) or fails.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any, NamedTuple

from integrator.connectors.read_ahead_child import COLUMNS, END, ERROR, HEADER, LOG, MARSHALLED, PICKLED
from integrator.errors import ConfigError, SourceError, TransientSourceError
from integrator.logs import get_logger

__all__ = ["Batch", "ReaderProcess"]

_ERRORS: dict[str, type[Exception]] = {
    "SourceError": SourceError,
    "TransientSourceError": TransientSourceError,
    "ConfigError": ConfigError,
}
_CHILD = "import integrator.connectors.read_ahead_child as child; child.run()"
"""The child's program: `read_ahead_child.run`, which imports only the child's side."""
_LOGGER = "integrator.connectors.odbc"
"""The reader's warnings are logged as the ODBC connector's, whose read they are about."""
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def _settings_of(source: Any) -> Any:
    """The source's settings as a plain namespace for the job: unpickling the config model itself would make the
    child import pydantic and the config module before it connects, most of its start."""
    dump = getattr(source, "model_dump", None)
    return SimpleNamespace(**dump()) if dump is not None else source


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
        *,
        contacts: bool = False,
    ) -> None:
        """`leave_out`: a normalised tag; rows with an erp_id whose tags lack it are not sent (see
        `connectors.base.LeaveOut`), and their batch says which rows it kept. `contacts`: read the contacts query
        instead of the customer query (`only` and `leave_out` do not apply to it)."""
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
            "source": _settings_of(source),
            "only": only,
            "retry_wait": retry_wait,
            "digest_key": digest_key,
            "leave_out": leave_out,
            "contacts": contacts,
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
            header = self._out.read(HEADER.size)
            if len(header) < HEADER.size:
                raise self._vanished()
            kind, size = HEADER.unpack(header)
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
    """Log a line the reader sent, as if this process had logged it (the logger is looked up at each use:
    `configure_logging`, or `capture_logs` in tests, may run after this module is imported)."""
    log = get_logger(_LOGGER)
    getattr(log, level, log.warning)(event, **fields)
