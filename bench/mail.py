"""Mail delivery throughput, as ops see it: `integrator mail deliver` timed as a whole process.

    .venv/bin/python bench/mail.py                          # 20,000 mails, file and SMTP backends, link mode
    .venv/bin/python bench/mail.py --mails 5000 --mode password --backend file
    .venv/bin/python bench/mail.py --profile file           # cProfile of one in-process delivery, top 25

Each case queues N activation mails straight into a fresh SQLite store (N pending accounts and their outbox rows,
as a first sync leaves them), then runs `integrator mail deliver --json` in a child process and times it from
start to exit. The SMTP case delivers to an aiosmtpd sink on 127.0.0.1 in its own process (it accepts and
discards). The reference is the raw write of N .eml files of the delivered mails' average size by a child Python
process (each written to a temporary name and hard-linked into place, as the file backend does), so the ratio is
the delivery's time over the bare cost of writing the same mail to disk. Figures: seconds, CPU seconds (the
command's own, steadier than wall time on a machine with noisy disks), mails per second and that ratio; argon2
temporary passwords (`--mode password`) are slow by design and reported as their own rows.

Each case writes into a new folder under bench/out/mail and the benchmark deletes none of them (deleting thousands
of files slows the next ones made nearby; see `_fresh_folder`): remove that folder yourself when done measuring.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "mail"
INTEGRATOR = str(Path(sys.executable).with_name("integrator"))

_SINK = textwrap.dedent(
    """
    import asyncio, sys, time
    from aiosmtpd.controller import Controller

    DELAY = float(sys.argv[2])

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            if DELAY:
                await asyncio.sleep(DELAY)
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    """
)

_RAW_WRITE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    folder, count, size = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    folder.mkdir(parents=True, exist_ok=True)
    body = b"x" * size
    for n in range(count):
        temporary = folder / f".{n:08d}.tmp"
        temporary.write_bytes(body)
        os.link(temporary, folder / f"{n:08d}.eml")
        temporary.unlink()
    """
)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(store: Path, count: int) -> None:
    """N pending accounts, each with one pending activation mail queued by the sync."""
    sys.path.insert(0, str(ROOT.parent))
    from integrator.clock import utcnow
    from integrator.store.db import open_store
    from integrator.store.schema import accounts, outbox

    engine = open_store(f"sqlite:///{store}")
    now = utcnow()
    batch = 10_000
    with engine.begin() as conn:
        for start in range(0, count, batch):
            people, mails = [], []
            for n in range(start, min(count, start + batch)):
                account_id, login = str(uuid.uuid4()), f"zamowienia{n}@firma{n % 997}.example.pl"
                people.append({
                    "id": account_id, "erp_id": str(n), "login": login, "live_login": login, "live_erp_id": str(n),
                    "live_key": str(n), "status": "pending_activation", "blocked": False,
                    "name": f"Hurtownia Żółć {n} Sp. z o.o.", "sales_rep": "Łukasz Wąsowski",
                    "sales_rep_email": "l.wasowski@hurtownia.example.pl", "locale": "pl", "fingerprint": "f" * 16,
                    "must_change_password": False, "created_at": now, "updated_at": now,
                })  # fmt: skip
                mails.append({
                    "account_id": account_id, "kind": "activation", "recipient": login, "locale": "pl",
                    "status": "pending", "attempts": 0, "created_at": now, "run_id": 1, "actor": "sync",
                })  # fmt: skip
            conn.execute(accounts.insert(), people)
            conn.execute(outbox.insert(), mails)
    engine.dispose()


def _config(folder: Path, backend: str, mode: str, port: int, connections: int) -> Path:
    smtp = f'[mail.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    if connections > 1:
        smtp += f"connections = {connections}\n"
    path = folder / "config.toml"
    path.write_text(
        '[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nurl = "sqlite:///store.db"\n'
        f'[accounts]\nactivation = "{mode}"\nportal_url = "https://b2b.hurtownia.example.pl"\n'
        f'[mail]\nbackend = "{backend}"\nsender = "Hurtownia Łódź B2B <no-reply@hurtownia.example.pl>"\n'
        f'[mail.file]\ndirectory = "mail"\n{smtp}[logging]\nlevel = "warning"\n',
        encoding="utf-8",
    )
    return path


def _timed(command: list[str], **kwargs: Any) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds, CPU seconds (user + system, the child's own) and the finished child."""
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done


def _fresh_folder(name: str) -> Path:
    """A new folder for one case, never emptied by the benchmark: remove bench/out/mail yourself between sessions.

    On ext4, new files are slow to make for a while after thousands were deleted nearby: the kernel checks each
    freed inode it comes across for a recent deletion. Emptying the last run's folders before measuring tripled the
    system time of the delivery and of the raw write alike (5,000 mails: 0.6-0.8 s of system time after no
    deletion, 2.0-2.7 s right after one; the raw write of 10,000 files 0.4 s against 1.8 s), a cost of the
    benchmark's own cleanup that a go-live does not pay."""
    folder = OUT / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}"
    folder.mkdir(parents=True)
    return folder


def _case(backend: str, mode: str, count: int, connections: int, delay: float) -> dict[str, Any]:
    folder = _fresh_folder(f"{backend}-{mode}-{count}")
    _seed(folder / "store.db", count)
    port = _free_port()
    sink = None
    if backend == "smtp":
        sink = subprocess.Popen([sys.executable, "-c", _SINK, str(port), str(delay)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    config = _config(folder, backend, mode, port, connections)
    try:
        seconds, cpu, done = _timed([INTEGRATOR, "mail", "deliver", "--json", "--config", str(config)])
    finally:
        if sink is not None:
            sink.communicate("")
    if done.returncode != 0:
        raise SystemExit(f"mail deliver exited {done.returncode}: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    sizes = [p.stat().st_size for p in (folder / "mail").glob("*.eml")]
    size = int(sum(sizes) / len(sizes)) if sizes else 2500
    raw_seconds, _, raw = _timed([sys.executable, "-c", _RAW_WRITE, str(folder / "raw"), str(count), str(size)])
    raw.check_returncode()
    return {
        "backend": backend, "mode": mode, "mails": count, "sent": report["sent"], "connections": connections,
        "relay_delay": delay,
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
        "mails_per_second": round(report["sent"] / seconds, 1),
        "raw_write_seconds": round(raw_seconds, 2), "ratio": round(seconds / raw_seconds, 2), "eml_bytes": size,
    }  # fmt: skip


def _profile(backend: str, count: int) -> None:
    folder = _fresh_folder(f"profile-{backend}")
    _seed(folder / "store.db", count)
    from integrator.config import load_config
    from integrator.mail.delivery import deliver_pending
    from integrator.store.db import open_store

    config = load_config(_config(folder, backend, "link", 25, 1))
    engine = open_store(config.store.url)
    profiler = cProfile.Profile()
    profiler.enable()
    report = deliver_pending(engine, config)
    profiler.disable()
    print(report)
    pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=20_000)
    parser.add_argument("--backend", choices=["file", "smtp", "both"], default="both")
    parser.add_argument("--mode", choices=["link", "password"], default="link")
    parser.add_argument("--connections", type=int, default=1, help="[mail.smtp] connections for the SMTP case")
    parser.add_argument("--relay-delay", type=float, default=0.0,
                        help="seconds the SMTP sink takes to answer each message (a relay far away)")  # fmt: skip
    parser.add_argument("--profile", choices=["file"], help="profile one in-process delivery instead")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    if args.profile:
        _profile(args.profile, args.mails)
        return
    backends = ["file", "smtp"] if args.backend == "both" else [args.backend]
    rows = [_case(b, args.mode, args.mails, args.connections, args.relay_delay) for b in backends]
    print(f"{'backend':8} {'mode':9} {'conn':>4} {'delay s':>7} {'mails':>7} {'seconds':>8} {'cpu s':>7} "
          f"{'mails/s':>9} {'raw write s':>12} {'ratio':>6}")  # fmt: skip
    for r in rows:
        print(f"{r['backend']:8} {r['mode']:9} {r['connections']:>4} {r['relay_delay']:>7} {r['sent']:>7} "
              f"{r['seconds']:>8} {r['cpu_seconds']:>7} "
              f"{r['mails_per_second']:>9} "
              f"{r['raw_write_seconds']:>12} {r['ratio']:>6}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
