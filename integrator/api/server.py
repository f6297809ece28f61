"""Running the API under uvicorn where `[api] listen` says, with a graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import socket
import threading

import uvicorn

from integrator.api.app import create_app
from integrator.config import Config
from integrator.logs import get_logger

__all__ = ["GRACE_SECONDS", "make_server", "serve"]

log = get_logger("api")

GRACE_SECONDS = 10
"""How long requests under way may take to finish once a shutdown is asked for."""


def make_server(config: Config) -> uvicorn.Server:
    """A uvicorn server for the app (its own access log off: the app logs requests without secrets)."""
    settings = uvicorn.Config(
        create_app(config),
        host=config.api.host,
        port=config.api.port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    return uvicorn.Server(settings)


def serve(config: Config, sock: socket.socket | None = None) -> None:
    """Serve until stopped (a signal, or `server.should_exit`); `sock` is an already bound socket (tests)."""
    server = make_server(config)
    if threading.current_thread() is threading.main_thread():
        # uvicorn handles SIGTERM/SIGINT while it serves (finishing requests under way) and raises the signal
        # again once it has stopped: that second one ends the process with exit 0, not killed by the signal.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _stopped)
    log.info("api_listening", listen=config.api.listen)
    server.run(sockets=[sock] if sock else None)


def _stopped(signum: int, _frame: object) -> None:
    log.info("api_stopped", signal=signal.Signals(signum).name)
    raise SystemExit(0)
