"""Crash points for fault-injection tests: `INTEGRATOR_CRASH_AT=name:n` kills the process (SIGKILL) at the
n-th time `checkpoint(name)` is reached, so tests can prove that a crash anywhere leaves a state the next
run converges from. Unset (always, in production), a checkpoint is one global lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["checkpoint"]


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, count = spec.partition(":")
    return name, int(count or 1)


_TARGET = _parse(os.environ.get("INTEGRATOR_CRASH_AT"))
_hits: dict[str, int] = {}


def checkpoint(name: str) -> None:
    """Die here, abruptly, if the environment asked for it."""
    if _TARGET is None or _TARGET[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
