"""`[api] max_hash_concurrency` bounds every argon2 verification a request causes, through a real uvicorn: the
customer's password at login and the API client's secret at POST /oauth/token alike (each ~64 MiB with the
product's parameters, so an unbounded flood of either could exhaust the server's memory)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support.api_server import api_config, running_api

from integrator.api.clients import add_client
from integrator.mail import secrets
from integrator.store.db import open_store

pytest_plugins = ["api_fixtures", "support.mail_fixtures"]


class _Gauge:
    """Wraps `secrets.verify_password` to record how many verifications ever ran at once."""

    def __init__(self, verify: Callable[[str | None, str], bool]) -> None:
        self._verify, self._lock = verify, threading.Lock()
        self.running = self.most = self.calls = 0

    def __call__(self, stored: str | None, password: str) -> bool:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)  # long enough for parallel requests to overlap if nothing holds them back
            return self._verify(stored, password)
        finally:
            with self._lock:
                self.running -= 1


def test_token_requests_and_logins_never_verify_more_at_once_than_configured(
    tmp_path: Path, sqlite_url: str, fast_argon2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_hash_concurrency = 2, eight parallel token requests (right and wrong secrets) and eight parallel
    logins each run at most two verifications together, and every request is still answered."""
    gauge = _Gauge(secrets.verify_password)
    monkeypatch.setattr(secrets, "verify_password", gauge)
    engine = open_store(sqlite_url)
    with running_api(api_config(tmp_path, sqlite_url, max_hash_concurrency=2), engine) as api:
        made = add_client(engine, "shop", ["portal"])

        def token(n: int) -> int:
            secret = made.client_secret if n % 2 else "not-the-secret"
            with httpx.Client(base_url=api.url, timeout=60) as http:
                answer = http.post(
                    "/oauth/token", data={"grant_type": "client_credentials"}, auth=(made.client_id, secret)
                )
            return answer.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(token, range(8)))
        assert statuses == [200] * 4 + [401] * 4
        assert (gauge.calls, gauge.most) == (8, 2)

        bearer = {"Authorization": f"Bearer {api.token('portal')}"}
        gauge.calls = gauge.most = 0

        def login(n: int) -> int:
            with httpx.Client(base_url=api.url, timeout=60) as http:
                body = {"login": f"nikt{n}@example.pl", "password": "Jakieś-Hasło-1"}
                return http.post("/v1/login", json=body, headers=bearer).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(login, range(8))) == [401] * 8
        assert gauge.most == 2 and gauge.calls >= 8
