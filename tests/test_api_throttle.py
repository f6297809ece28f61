"""Failed logins throttled per login and per customer address (from a trusted client's header), with growing
delays, never a lock-out: parallel guesses cannot get past the limit, a reset still works, a success clears the
count. Real uvicorn on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from support.api_server import RunningApi, api_config, running_api
from support.mailstore import rows, seed_account

from integrator.mail.secrets import hash_password
from integrator.store.db import open_store
from integrator.store.schema import outbox

pytest_plugins = ["api_fixtures", "support.mail_fixtures"]

PASSWORD = "Dobre-Hasło-123"
FREE, ADDRESS_FREE = 3, 4  # small, so the tests make few slow argon2 checks


@pytest.fixture
def api(tmp_path: Path, api_store_url: str, api_engine: Engine) -> Iterator[RunningApi]:
    """The API with small free-attempt allowances."""
    config = api_config(tmp_path, api_store_url, login_free_attempts=FREE, address_free_attempts=ADDRESS_FREE)
    with running_api(config, api_engine) as running:
        yield running


def _login(api: RunningApi, token: str, login: str, password: str, ip: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if ip:
        headers["X-Customer-IP"] = ip
    with api.client() as http:
        return http.post("/v1/login", json={"login": login, "password": password}, headers=headers)


def test_parallel_wrong_guesses_cannot_pass_the_limit_and_the_delay_then_lets_the_owner_in(api: RunningApi) -> None:
    """20 wrong guesses at once: at most [api] login_free_attempts are checked (401), the rest are 429 throttled with
    Retry-After; the delays then double, and the right password waits its turn too, then logs in."""
    seed_account(api.engine, "jan@example.pl", status="active", password_hash=hash_password(PASSWORD))
    token = api.token("portal")
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: _login(api, token, "jan@example.pl", f"zgadywane-{n}"), range(20)))
    counts = Counter(a.status_code for a in answers)
    assert counts[401] <= FREE and counts[401] + counts[429] == 20, counts
    throttled = next(a for a in answers if a.status_code == 429)
    assert throttled.json()["error"] == "throttled" and int(throttled.headers["retry-after"]) >= 1
    delays = []
    for _ in range(2):  # each failure past the free ones doubles the wait: a delay, never a lock
        answer = _login(api, token, "jan@example.pl", "zle-0")
        while answer.status_code == 429:
            delays.append(int(answer.headers["retry-after"]))
            time.sleep(int(answer.headers["retry-after"]))
            answer = _login(api, token, "jan@example.pl", "zle-0")
        assert answer.status_code == 401
    follow = _login(api, token, "jan@example.pl", PASSWORD)
    assert follow.status_code == 429 and int(follow.headers["retry-after"]) > max(delays, default=0)
    time.sleep(int(follow.headers["retry-after"]))
    assert _login(api, token, "jan@example.pl", PASSWORD).status_code == 200
    assert _login(api, token, "jan@example.pl", "zle-1").status_code == 401  # the success cleared the count


def test_an_unknown_login_is_throttled_exactly_like_a_known_one(api: RunningApi) -> None:
    """The same statuses, in the same order, for wrong guesses at a known and at an unknown login."""
    seed_account(api.engine, "jan@example.pl", status="active", password_hash=hash_password(PASSWORD))
    token = api.token("portal")
    known = [_login(api, token, "jan@example.pl", "zle").status_code for _ in range(FREE + 1)]
    unknown = [_login(api, token, "nikt@example.pl", "zle").status_code for _ in range(FREE + 1)]
    assert known == unknown == [401] * FREE + [429]


def test_password_reset_works_while_logins_are_throttled(api: RunningApi) -> None:
    """Throttled logins do not keep the customer from a reset: 202 and a mail queued."""
    seed_account(api.engine, "jan@example.pl", status="active", password_hash=hash_password(PASSWORD))
    token = api.token("portal")
    for _ in range(FREE + 1):
        last = _login(api, token, "jan@example.pl", "zle")
    assert last.status_code == 429
    with api.client() as http:
        reset = http.post(
            "/v1/password-reset", json={"login": "jan@example.pl"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert reset.status_code == 202
    deadline = time.monotonic() + 10
    while not rows(api.engine, outbox):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [m["kind"] for m in rows(api.engine, outbox)] == ["password_reset"]


def test_an_address_is_throttled_across_logins_only_from_a_trusted_client(
    tmp_path: Path, sqlite_url: str, fast_argon2: None
) -> None:
    """From a client named in [api] client_ip_trusted, one address guessing at many logins is throttled after
    ADDRESS_FREE attempts while another address goes on; another client's header is ignored."""
    config = api_config(tmp_path, sqlite_url, client_ip_trusted=["sklep"], address_free_attempts=ADDRESS_FREE)
    with running_api(config, open_store(sqlite_url)) as api:
        trusted = api.token("portal", name="sklep")
        other = api.token("portal", name="inny")
        statuses = [
            _login(api, trusted, f"k{n}@example.pl", "zle", ip="203.0.113.7").status_code
            for n in range(ADDRESS_FREE + 1)
        ]
        assert statuses == [401] * ADDRESS_FREE + [429]
        assert _login(api, trusted, "k0@example.pl", "zle", ip="198.51.100.1").status_code == 401
        ignored = [
            _login(api, other, f"u{n}@example.pl", "zle", ip="203.0.113.7").status_code for n in range(ADDRESS_FREE + 1)
        ]
        assert ignored == [401] * (ADDRESS_FREE + 1)
        bad = _login(api, trusted, "k0@example.pl", "zle", ip="not-an-address")
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_request")


def test_password_work_is_bounded_to_max_hash_concurrency(tmp_path: Path, sqlite_url: str) -> None:
    """Eight requests wanting to hash at once: never more than [api] max_hash_concurrency hold a slot together."""
    import threading

    from integrator.api.context import ApiContext

    context = ApiContext(api_config(tmp_path, sqlite_url, max_hash_concurrency=2), open_store(sqlite_url))
    holding, most, lock = 0, 0, threading.Lock()

    def work() -> None:
        nonlocal holding, most
        with context.hashing():
            with lock:
                holding += 1
                most = max(most, holding)
            time.sleep(0.05)
            with lock:
                holding -= 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: work(), range(8)))
    assert most == 2
