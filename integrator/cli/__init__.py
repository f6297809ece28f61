"""The `integrator` command: one module per command group, each thin (parse, call one function, print)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from integrator.cli.app import main

__all__ = ["main", "run"]


def run() -> None:
    """The installed command: `main`, then an exit that skips the interpreter's teardown.

    After a sync of a million customers the process holds a large heap (caches of normalised logins, the modules
    of the store and the ODBC stack); a normal exit frees it object by object, which ops wait for after the
    summary is printed. Everything that matters at exit is done here first: output flushed, log handlers closed,
    the stores' connections closed (SQLite's WAL checkpointed). Tests call `main` in-process instead."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    # The command has answered: nothing here may change its exit code or print a traceback after its output.
    with contextlib.suppress(Exception):  # e.g. a reader that went away (`| head`): BrokenPipeError
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    with contextlib.suppress(Exception):
        logging.shutdown()
    if "integrator.store.db" in sys.modules:  # only commands that opened a store loaded it
        with contextlib.suppress(Exception):  # a store already gone: the OS closes the socket
            sys.modules["integrator.store.db"].close_stores()
    os._exit(code)


def _exit_code(code: object) -> int:
    """`sys.exit`'s argument as the process's exit code: None is 0, a message is printed and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
