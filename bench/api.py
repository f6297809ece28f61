"""The portal API benchmark: logins and tokens per second, and their latency, with the product's argon2.

    .venv/bin/python bench/api.py [--accounts N] [--requests R] [--concurrency C] [--hash-concurrency H]
                                  [--out DIR] [--json FILE]

It makes a SQLite store holding N activated accounts (one argon2id hash with the product's parameters, shared by
all, so the set-up does not take N hashes), starts `integrator serve` on a free loopback port as a subprocess,
makes a `portal` client with `integrator api-client add`, then sends R requests of each kind from C concurrent
clients (asyncio + httpx.AsyncClient) and measures requests per second and the p50/p99 latency:

* `POST /oauth/token` (client credentials, HTTP Basic: the client secret is an argon2id hash too);
* `POST /v1/login` with the right password, round robin over the accounts;
* `POST /v1/login` with a wrong password, round robin (each login gets at most R/N failures, under the
  throttle's free attempts, so what is measured is the check, not a 429);
* `POST /v1/login` with logins that do not exist (a dummy verification, as slow as a wrong password).

Every password check holds one of `[api] max_hash_concurrency` slots (`--hash-concurrency`, default the
product's 4). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PASSWORD = "Hasło-Do-Portalu-2026"
INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def argon2_parameters() -> dict[str, int]:
    """The parameters the product hashes customers' passwords with (integrator.mail.secrets)."""
    from integrator.mail import secrets

    hasher = secrets._hasher
    return {
        "time_cost": hasher.time_cost,
        "memory_cost_kib": hasher.memory_cost,
        "parallelism": hasher.parallelism,
        "hash_len": hasher.hash_len,
        "salt_len": hasher.salt_len,
    }


def verify_ms(times: int = 5) -> float:
    """The reference: one argon2id verification in this process, on one thread (median of `times`, ms)."""
    from integrator.mail.secrets import hash_password, verify_password

    stored = hash_password(PASSWORD)
    took = []
    for _ in range(times):
        started = time.perf_counter()
        verify_password(stored, PASSWORD)
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1000


def seed_store(url: str, accounts: int) -> list[str]:
    """A migrated store with `accounts` active accounts sharing one password; returns their logins."""
    from integrator.clock import utcnow
    from integrator.mail.secrets import hash_password
    from integrator.store.db import open_store
    from integrator.store.schema import accounts as table

    engine = open_store(url)
    password_hash, now = hash_password(PASSWORD), utcnow()
    logins = [f"zamowienia{i}@firma{i % 997}.example.pl" for i in range(accounts)]
    rows = [
        {
            "id": str(uuid.uuid4()), "erp_id": str(i), "login": login, "live_login": login, "live_erp_id": str(i),
            "live_key": str(i), "status": "active", "blocked": False, "name": f"Hurtownia Żółw {i} sp. z o.o.",
            "fingerprint": "f" * 16, "password_hash": password_hash, "must_change_password": False,
            "created_at": now, "updated_at": now, "activated_at": now, "locale": "pl",
        }
        for i, login in enumerate(logins)
    ]  # fmt: skip
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[start : start + 5000])
    engine.dispose()
    return logins


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(out: Path, url: str, port: int, hash_concurrency: int) -> Path:
    """The config `integrator serve` runs with: the store, loopback, the product's defaults otherwise."""
    path = out / "api-bench.toml"
    path.write_text(
        f'[source]\nkind = "csv"\npath = "erp.csv"\n\n[store]\nurl = "{url}"\n\n[mail]\nbackend = "console"\n\n'
        f'[logging]\nformat = "json"\nlevel = "warning"\n\n'
        f'[api]\nlisten = "127.0.0.1:{port}"\nmax_hash_concurrency = {hash_concurrency}\n',
        encoding="utf-8",
    )
    return path


def add_client(config: Path) -> tuple[str, str]:
    """A `portal` client, made as an operator makes one."""
    made = subprocess.run(
        [INTEGRATOR, "api-client", "add", "bench", "--scope", "portal", "--json", "--config", str(config)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    answer = json.loads(made.stdout)
    return answer["client_id"], answer["client_secret"]


def start_server(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`integrator serve` in its own process; returns once /healthz answers."""
    with log.open("wb") as sink:
        server = subprocess.Popen([INTEGRATOR, "serve", "--config", str(config)], stdout=sink, stderr=sink)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"integrator serve exited with {server.returncode}: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError(f"integrator serve did not answer /healthz within 30 s: see {log}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful shutdown), then wait for the exit."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _reset_peak_rss(pid: int) -> None:
    """Start the process's peak RSS (VmHWM) again from its current RSS (Linux: `5` to /proc/PID/clear_refs)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")


def _peak_rss_mb(pid: int) -> float | None:
    """The process's peak RSS since the last reset, in MiB (None where /proc does not tell)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


async def _measure(
    base: str, requests: list[dict[str, Any]], concurrency: int
) -> tuple[float, list[float], Counter[int]]:
    """Send `requests` (httpx.request keyword arguments) from `concurrency` workers; wall seconds, latencies (s),
    statuses."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:

        async def worker() -> None:
            while not queue.empty():
                request = queue.get_nowait()
                started = time.perf_counter()
                answer = await http.request(**request)
                latencies.append(time.perf_counter() - started)
                statuses[answer.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, statuses


def _row(step: str, seconds: float, latencies: list[float], statuses: Counter[int], concurrency: int) -> dict[str, Any]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {
        "step": step,
        "requests": len(latencies),
        "concurrency": concurrency,
        "seconds": seconds,
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
    }


def scenarios(
    logins: list[str], requests: int, token: str, client: tuple[str, str]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each step's requests, in the order they run."""
    bearer = {"Authorization": f"Bearer {token}"}

    def login(login_: str, password: str) -> dict[str, Any]:
        return {
            "method": "POST",
            "url": "/v1/login",
            "json": {"login": login_, "password": password},
            "headers": bearer,
        }

    return [
        (
            "token (POST /oauth/token)",
            [
                {"method": "POST", "url": "/oauth/token", "data": {"grant_type": "client_credentials"}, "auth": client}
                for _ in range(requests)
            ],
        ),
        ("login, right password", [login(logins[i % len(logins)], PASSWORD) for i in range(requests)]),
        ("login, wrong password", [login(logins[i % len(logins)], "Złe-Hasło-123") for i in range(requests)]),
        (
            "login, unknown login",
            [login(f"nikt{i}@nieznana.example.pl", PASSWORD) for i in range(requests)],
        ),
    ]


def run(out: Path, accounts: int, requests: int, concurrency: int, hash_concurrency: int = 4) -> dict[str, Any]:
    """Seed, serve, measure every step; returns the parameters and one row per step."""
    out.mkdir(parents=True, exist_ok=True)
    store = out / f"api-store-{accounts}.db"
    for leftover in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
        leftover.unlink(missing_ok=True)
    url = f"sqlite:///{store}"
    started = time.perf_counter()
    logins = seed_store(url, accounts)
    port = _free_port()
    config = write_config(out, url, port, hash_concurrency)
    client = add_client(config)
    server = start_server(config, port, out / "api-serve.log")
    print(f"store of {accounts:,} accounts, client and server ready in {time.perf_counter() - started:.1f} s: {store}",
          file=sys.stderr)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    rows = []
    load_before, reference = os.getloadavg()[0], verify_ms()
    try:
        granted = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=client, timeout=60)
        granted.raise_for_status()
        token = granted.json()["access_token"]
        for step, batch in scenarios(logins, requests, token, client):
            _reset_peak_rss(server.pid)
            seconds, latencies, statuses = asyncio.run(_measure(base, batch, concurrency))
            rows.append(
                _row(step, seconds, latencies, statuses, concurrency) | {"peak_rss_mb": _peak_rss_mb(server.pid)}
            )
    finally:
        stop_server(server)
    return {
        "accounts": accounts,
        "requests": requests,
        "concurrency": concurrency,
        "max_hash_concurrency": hash_concurrency,
        "cpus": os.cpu_count(),
        "argon2": argon2_parameters(),
        "verify_ms": reference,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| step | requests | concurrency | seconds | requests/s | p50 (ms) | p99 (ms) | p50 / one verification |"
        " server peak RSS (MiB) | statuses |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| argon2id verify (reference, in-process, 1 thread) | 5 | 1 | | {1000 / result['verify_ms']:.1f} |"
        f" {result['verify_ms']:.0f} | | 1.00 | | |",
    ]
    for r in result["rows"]:
        statuses = ", ".join(f"{code}: {count}" for code, count in r["statuses"].items())
        rss = "—" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        lines.append(
            f"| {r['step']} | {r['requests']:,} | {r['concurrency']} | {r['seconds']:.2f} |"
            f" {r['requests_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |"
            f" {r['p50_ms'] / result['verify_ms']:.2f} | {rss} | {statuses} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000, help="active accounts in the store (default 10,000)")
    parser.add_argument("--requests", type=int, default=400, help="requests of each kind (default 400)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument(
        "--hash-concurrency", type=int, default=4, help="the server's [api] max_hash_concurrency (default 4)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work folder (default bench/out)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.requests > args.accounts * 5:
        parser.error("--requests may be at most 5 x --accounts: more wrong passwords per login would be throttled")
    result = run(args.out, args.accounts, args.requests, args.concurrency, args.hash_concurrency)
    a = result["argon2"]
    print(
        f"{result['accounts']:,} active accounts (SQLite store), {result['cpus']} CPUs, [api] max_hash_concurrency "
        f"{result['max_hash_concurrency']}; argon2id time_cost {a['time_cost']}, memory {a['memory_cost_kib']} KiB, "
        f"parallelism {a['parallelism']}; load average {result['load_before']:.1f} before, "
        f"{result['load_after']:.1f} after"
    )
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
