"""A real uvicorn serving the portal API on a free loopback port, in a thread of the test process, and httpx
helpers to call it as a portal backend would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine

from integrator.api.app import create_app
from integrator.api.clients import add_client
from integrator.config import Config, config_from_dict
from integrator.mail import secrets

__all__ = ["FAST_HASHER", "RunningApi", "api_config", "real_argon2", "running_api"]

REAL_HASHER, REAL_DUMMY = secrets._hasher, secrets._DUMMY_HASH
FAST_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class RunningApi:
    """The served app's base URL and its store."""

    url: str
    engine: Engine
    config: Config

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def token(self, *scopes: str, name: str | None = None) -> str:
        """A bearer token of a new client holding `scopes`."""
        made = add_client(self.engine, name or f"c-{'-'.join(scopes)}-{time.monotonic_ns()}", scopes)
        with self.client() as http:
            answer = http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(made.client_id, made.client_secret)
            )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


@contextmanager
def running_api(config: Config, engine: Engine) -> Iterator[RunningApi]:
    """Serve the app on 127.0.0.1:<free port> until the block ends (then a graceful shutdown)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config, engine), access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield RunningApi(f"http://127.0.0.1:{port}", engine, config)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def api_config(tmp_path: Path, url: str, **api: Any) -> Config:
    """A config for the API tests: the store at `url`, file mail, `[api]` as given."""
    data: dict[str, Any] = {
        "source": {"kind": "csv", "path": "erp.csv"},
        "store": {"url": url},
        "accounts": {"portal_url": "https://b2b.hurtownia.example.pl"},
        "mail": {"backend": "file"},
        "api": api,
    }
    return config_from_dict(data, tmp_path / "config.toml")


def real_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The product's argon2 parameters again, for a test that measures time."""
    monkeypatch.setattr(secrets, "_hasher", REAL_HASHER)
    monkeypatch.setattr(secrets, "_DUMMY_HASH", REAL_DUMMY)
