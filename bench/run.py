"""The sync benchmark: one command, every figure of issue "Benchmark and performance" in one run.

    .venv/bin/python bench/run.py [--customers N] [--contacts] [--store sqlite|postgresql|mariadb|both] [--repeat K]
                                  [--out DIR] [--json FILE]

It writes an ERP of N customers (SQLite, read through the SQLite3 ODBC driver), then measures, each step in a
fresh child process (so one step's peak memory never hides another's): the bare read of the source query with
pyodbc `fetchmany` (the reference), the initial sync, a no-change resync, a resync after 1 % of customers
changed their phone, a resync after 5 % lost the tag (`--allow-mass-removal`), and mail delivery to the file
backend. Each sync's ratio is to a bare read measured right before it, in the same run, since machines are
noisy and their speed drifts; `--repeat K` measures the initial and the no-change sync K times and shows the
median ratio. With `--contacts` the ERP gains a contacts table (about 1.5 per customer), the sync makes one account
per eligible contact, and the reference is the bare read of both queries, customers then contacts. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUERY = (
    "SELECT erp_id, name, email, tags, symbol, tax_id, phone, price_level, discount, sales_rep, sales_rep_email,"
    " active, locale FROM customers"
)
CONTACTS_QUERY = "SELECT erp_id, contact_id, email, name, phone, active, access, locale FROM contacts"
FETCH_SIZE = 5000

_PREFIXES = ["Hurtownia", "P.H.U.", "F.H.", "Przedsiębiorstwo Handlowe", "Delikatesy", "Sklep Spożywczy", "Zakład"]
_NAMES = ["Łódź", "Żółw", "Kłos", "Świątek", "Gęś", "Dąbrowa", "Wiśnia", "Źródło", "Ćma", "Jabłoń", "Sójka"]
_CITIES = ["Kraków", "Gdańsk", "Wrocław", "Poznań", "Łódź", "Białystok", "Rzeszów", "Toruń", "Częstochowa"]
_TAGGED = ["b2b", " B2B", "B2b ", "hurt, b2b", "b2b,vip", "VIP, B2B ", "sieć,b2b,płatność 14 dni"]
_UNTAGGED = ["", "hurt", "vip", "b2bx", "detal, sieć"]
_REPS = [("Anna Kępińska", "anna.kepinska"), ("Piotr Nowak", "piotr.nowak"), ("Joanna Ćwiklińska", "j.cwiklinska")]
_FIRST = ["Małgorzata", "Łukasz", "Agnieszka", "Paweł", "Żaneta", "Grzegorz", "Jolanta", "Krzysztof", "Ewa", "Michał"]
_LAST = ["Wiśniewska", "Kowalczyk", "Zieliński", "Wójcik", "Dąbrowski", "Szymańska", "Woźniak", "Kozłowski", "Jaś"]
_ASCII = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ")
_BAD_EMAILS = ["brak", "", None, "jan@@firma.pl", "tel. 601 234 567"]


def generate_erp(path: Path, customers: int, seed: int = 1, contacts: bool = False) -> dict[str, int]:
    """An ERP customer table: about two thirds tagged, ~1 % invalid e-mails, ~1 % inactive, some duplicates.

    With `contacts`, also a contacts table (`generate_contacts`); the customers are the same either way."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE customers (erp_id INTEGER PRIMARY KEY, name TEXT, email TEXT, tags TEXT, symbol TEXT,"
        " tax_id TEXT, phone TEXT, price_level TEXT, discount NUMERIC, sales_rep TEXT, sales_rep_email TEXT,"
        " active INTEGER, locale TEXT)"
    )
    counts = {"customers": customers, "tagged": 0}
    eligible = bytearray(customers + 1)  # tagged and active: whose contacts may get an account
    rows = []
    for erp_id in range(1, customers + 1):
        tagged = rng.random() < 2 / 3
        counts["tagged"] += tagged
        city = rng.choice(_CITIES)
        name = f"{rng.choice(_PREFIXES)} {rng.choice(_NAMES)} {city} {erp_id} sp. z o.o."
        roll = rng.random()
        if roll < 0.01:
            email = rng.choice(["brak", "", None, "jan@@firma.pl", "tel. 601 234 567"])
        elif roll < 0.015 and erp_id > 10:
            email = f"zamowienia{erp_id - rng.randint(1, 10)}@firma{(erp_id - 1) % 997}.example.pl"
        else:
            email = f"zamowienia{erp_id}@firma{erp_id % 997}.example.pl"
        rep, rep_mail = rng.choice(_REPS)
        rows.append(
            (
                erp_id, name, email, rng.choice(_TAGGED if tagged else _UNTAGGED), f"K/{erp_id:07d}",
                f"{rng.randrange(10**9, 10**10)}", f"+48 {rng.randrange(500_000_000, 899_999_999)}",
                rng.choice(["Hurtowa", "Detaliczna", "Specjalna", "Dystrybutor"]), rng.choice([0, 2.5, 5, 7.5, 12]),
                rep, f"{rep_mail}@hurtownia.example.pl", 0 if rng.random() < 0.01 else 1,
                "en" if rng.random() < 0.03 else "pl",
            )
        )  # fmt: skip
        eligible[erp_id] = tagged and rows[-1][11]
        if len(rows) == 50_000:
            db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            rows = []
    db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    if contacts:
        counts.update(generate_contacts(db, eligible, seed))
    db.commit()
    db.close()
    return counts


def generate_contacts(db: sqlite3.Connection, eligible: bytearray, seed: int = 1) -> dict[str, int]:
    """A contacts table: 0-3 contacts per customer (1.5 on average), Polish names, e-mails unique but for ~0.3 %
    that share another customer's contact's, ~1 % invalid, ~2 % inactive, ~2 % with access off, half with a phone
    of their own (the others take their customer's), a few with a locale. `eligible[erp_id]`: the customer is
    tagged and active. Returns the contacts and the most accounts they can make (contacts of eligible customers
    that are active, have access and a valid e-mail; a shared e-mail's losers come off that)."""
    rng = random.Random(seed + 1)  # its own stream: the customers do not depend on whether contacts are made
    db.execute(
        "CREATE TABLE contacts (erp_id INTEGER, contact_id INTEGER PRIMARY KEY, email TEXT, name TEXT, phone TEXT,"
        " active INTEGER, access INTEGER, locale TEXT)"
    )
    counts = {"contacts": 0, "eligible_contacts": 0}
    rows: list[tuple[Any, ...]] = []
    contact_id, shared = 0, "biuro@firma0.example.pl"
    for erp_id in range(1, len(eligible)):
        roll = rng.random()
        for _ in range(0 if roll < 0.15 else 1 if roll < 0.5 else 2 if roll < 0.85 else 3):
            contact_id += 1
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            roll = rng.random()
            if roll < 0.01:
                email = rng.choice(_BAD_EMAILS)
            elif roll < 0.013:
                email = shared  # the last unique one: another contact's, mostly of another customer
            else:
                email = shared = f"{first}.{last}.{contact_id}@firma{erp_id % 997}.example.pl".translate(_ASCII).lower()
            active, access = int(rng.random() >= 0.02), int(rng.random() >= 0.02)
            rows.append(
                (
                    erp_id, contact_id, email, f"{first} {last}",
                    f"+48 {rng.randrange(500_000_000, 899_999_999)}" if rng.random() < 0.5 else None,
                    active, access, rng.choice(["pl", "en"]) if rng.random() < 0.1 else None,
                )
            )  # fmt: skip
            counts["contacts"] += 1
            counts["eligible_contacts"] += bool(eligible[erp_id] and active and access and roll >= 0.01)
            if len(rows) == 50_000:
                db.executemany("INSERT INTO contacts VALUES (?,?,?,?,?,?,?,?)", rows)
                rows = []
    db.executemany("INSERT INTO contacts VALUES (?,?,?,?,?,?,?,?)", rows)
    return counts


def change_phones(path: Path, share: float) -> int:
    """Give `share` of all customers a new phone number; returns how many changed."""
    step = round(1 / share)
    with sqlite3.connect(path) as db:
        return db.execute("UPDATE customers SET phone = phone || '0' WHERE erp_id % ? = 0", (step,)).rowcount


def untag(path: Path, share: float) -> int:
    """Take the tag away from `share` of the tagged customers; returns how many lost it."""
    step = round(1 / share)
    with sqlite3.connect(path) as db:
        return db.execute(
            "UPDATE customers SET tags = 'hurt' WHERE erp_id % ? = 1 AND lower(tags) LIKE '%b2b%'"
            " AND lower(tags) NOT LIKE '%b2bx%'",
            (step,),
        ).rowcount


# -- workers: each measured step runs in its own process -------------------------------------------------


def _settings(state: dict[str, Any]) -> dict[str, Any]:
    """The config of every step, as the nested tables of its TOML file."""
    return {
        "source": {"kind": "odbc", "connection_string": f"Driver=SQLite3;Database={state['erp']}", "query": QUERY,
                   "fetch_size": FETCH_SIZE, **({"contacts_query": CONTACTS_QUERY} if state.get("contacts") else {})},
        "store": {"url": state["store_url"]},
        "mail": {"backend": "file", "deliver_after_sync": False, "file": {"directory": state["mail_dir"]}},
        "logging": {"level": "warning"},
    }  # fmt: skip


def _config(state: dict[str, Any]) -> Any:
    from integrator.config import config_from_dict

    return config_from_dict(_settings(state), Path(state["dir"]) / "config.toml")


def _bare_read(state: dict[str, Any]) -> dict[str, Any]:
    """The reference: the same query, the same effective connection string, pyodbc `fetchmany` of the same size
    as the connector's (`read_chunk`), nothing else. With contacts, the customer query and then the contacts
    query on the same connection, timed together."""
    import pyodbc

    from integrator.connectors.odbc import OdbcConnector, read_chunk

    source = _config(state).source
    connection_string, chunk = OdbcConnector(source).connection_string, read_chunk(source.fetch_size)
    queries = (QUERY, CONTACTS_QUERY) if state.get("contacts") else (QUERY,)
    started = time.perf_counter()
    connection = pyodbc.connect(connection_string, autocommit=True)
    cursor = connection.cursor()
    counts = []
    for query in queries:
        cursor.execute(query)
        if state.get("buffered"):  # every row at once: more memory, fewer calls
            counts.append(len(cursor.fetchall()))
            continue
        rows = 0
        while batch := cursor.fetchmany(chunk):
            rows += len(batch)
        counts.append(rows)
    connection.close()
    outcome = {"seconds": time.perf_counter() - started, "records": sum(counts)}
    if state.get("contacts"):
        outcome["customer_rows"], outcome["contact_rows"] = counts
    return outcome


def _sync(state: dict[str, Any], allow_mass_removal: bool = False) -> dict[str, Any]:
    from integrator.store.db import open_store
    from integrator.sync import run_sync

    config = _config(state)
    engine = open_store(config.store.url)  # schema migration is set-up, not sync work
    started = time.perf_counter()
    result = run_sync(config, engine=engine, allow_mass_removal=allow_mass_removal)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": result.records,
        "status": result.status,
        **{k: getattr(result, k) for k in ("created", "updated", "removed", "unchanged", "rejected", "mails_queued")},
        "timings": result.timings,
    }


def _deliver(state: dict[str, Any]) -> dict[str, Any]:
    from integrator.mail.delivery import deliver_pending
    from integrator.store.db import open_store

    config = _config(state)
    engine = open_store(config.store.url)
    started = time.perf_counter()
    report = deliver_pending(engine, config, limit=state.get("deliver_limit"))
    return {"seconds": time.perf_counter() - started, "records": report.sent, "sent": report.sent,
            "pending_left": report.pending_left}  # fmt: skip


WORKERS = {
    "bare": _bare_read,
    "initial": _sync,
    "nochange": _sync,
    "change_1pct": _sync,
    "untag_5pct": lambda state: _sync(state, allow_mass_removal=True),
    "deliver": _deliver,
}


def _worker(step: str, state_file: str) -> None:
    import gc

    state = json.loads(Path(state_file).read_text())
    gc.collect()
    outcome = WORKERS[step](state)
    outcome["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if state.get("contacts"):  # the sync's reader process (customers), waited for: the largest child's peak
        outcome["children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(outcome))


def _measure(step: str, state: dict[str, Any]) -> dict[str, Any]:
    state_file = Path(state["dir"]) / "state.json"
    state_file.write_text(json.dumps(state))
    # Flush what the set-up wrote (the ERP copy, a changed ERP): its writeback would otherwise compete with the
    # step's own commits and fsyncs, and charge the set-up's I/O to the step.
    os.sync()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", step, "--state", str(state_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- whole process: the command as ops run it ---------------------------------------------------------------

COMMANDS = {
    "initial": ["sync", "--json"],
    "nochange": ["sync", "--json"],
    "change_1pct": ["sync", "--json"],
    "untag_5pct": ["sync", "--json", "--allow-mass-removal"],
    "deliver": ["mail", "deliver", "--json"],
}


def _toml(table: dict[str, Any], name: str = "") -> str:
    """A TOML table and its subtables; strings and numbers as JSON spells them (valid TOML for these)."""
    plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
    text = f"[{name}]\n" if name and plain else ""
    text += "".join(f"{key} = {json.dumps(value)}\n" for key, value in plain.items())
    for key, value in table.items():
        if isinstance(value, dict):
            text += "\n" + _toml(value, f"{name}.{key}" if name else key)
    return text


def write_config_file(state: dict[str, Any]) -> Path:
    """The config `_config` builds, as the TOML file a user would write: what the whole-process steps run."""
    path = Path(state["dir"]) / "config.toml"
    path.write_text(_toml(_settings(state)), encoding="utf-8")
    return path


def _measure_command(step: str, state: dict[str, Any]) -> dict[str, Any]:
    """`integrator sync` (or `mail deliver`) as ops run it: the wall time from the process's start to its exit,
    and its peak RSS (the largest of the command's process and the children it waited for, as `wait4` reports)."""
    os.sync()
    command = [str(Path(sys.executable).with_name("integrator")), *COMMANDS[step], "--config",
               str(write_config_file(state))]  # fmt: skip
    if step == "deliver" and state.get("deliver_limit"):
        command += ["--limit", str(state["deliver_limit"])]
    out, err = Path(state["dir"]) / f"{step}.out", Path(state["dir"]) / f"{step}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        # wait4, not wait(): its rusage is the command's own, its peak RSS the largest of it and its children
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise SystemExit(f"step {step} failed ({code}):\n{err.read_text()[-3000:]}")
    summary = json.loads(out.read_text())
    outcome: dict[str, Any] = {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "exit_code": code}
    if step == "deliver":
        return {**outcome, "records": summary["sent"], "sent": summary["sent"], "pending_left": summary["pending_left"]}
    counts = ("created", "updated", "removed", "unchanged", "rejected", "mails_queued")
    records = sum(summary[k] for k in ("created", "updated", "removed", "unchanged", "rejected", "quarantined"))
    return {**outcome, "records": summary.get("records", records), "status": summary["status"],
            **{k: summary[k] for k in counts}}  # fmt: skip


def _reference(state: dict[str, Any]) -> dict[str, Any]:
    """The bare read a sync is compared with: streamed (`fetchmany`); in whole-process mode the faster of a
    streamed and a buffered (`fetchall`) read, each in its own process, as the whole-process target says."""
    streamed = _measure("bare", state)
    if not state.get("whole_process"):
        return streamed
    buffered = _measure("bare", {**state, "buffered": True})
    faster = min((streamed, buffered), key=lambda r: r["seconds"])
    return {**faster, "streamed_seconds": streamed["seconds"], "buffered_seconds": buffered["seconds"]}


# -- the run ---------------------------------------------------------------------------------------------


def _throwaway_database(admin: Any, drop_sql: str, create_sql: str, url: str) -> tuple[str, Any, Any]:
    """(url, empty, drop) of a new database on a server: `admin(sql)` runs a statement there; `{name}` in the SQL
    and the URL is the database's name. `empty()` makes it new again."""
    name = f"bench_{uuid.uuid4().hex[:10]}"

    def drop() -> None:
        admin(drop_sql.format(name=name))

    def empty() -> None:
        drop()
        admin(create_sql.format(name=name))

    empty()
    return url.format(name=name), empty, drop


def _postgres_database() -> tuple[str, Any, Any]:
    """A throwaway PostgreSQL database (see `_throwaway_database`)."""
    import psycopg

    def admin(sql: str) -> None:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
            conn.execute(sql)

    return _throwaway_database(
        admin,
        'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        'CREATE DATABASE "{name}"',
        "postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
    )


def _mariadb_database() -> tuple[str, Any, Any]:
    """A throwaway MariaDB database, utf8mb4 (see `_throwaway_database`)."""
    import pymysql

    def admin(sql: str) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    return _throwaway_database(
        admin,
        "DROP DATABASE IF EXISTS `{name}`",
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
        "mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4",
    )


def _sqlite_emptier(path: Path) -> Any:
    def empty() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    return empty


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median ratio (the lower one of an even count), with every run's ratio, and every run,
    beside it."""
    ratios = [run["seconds"] / run["bare_seconds"] for run in runs]
    middle = sorted(range(len(runs)), key=ratios.__getitem__)[(len(runs) - 1) // 2]
    return {**runs[middle], "ratios": ratios, "runs": runs}


def run_store(
    store: str,
    base_erp: Path,
    out: Path,
    customers: int,
    deliver_limit: int | None,
    repeat: int = 1,
    contacts: bool = False,
    whole_process: bool = False,
) -> list[dict[str, Any]]:
    """Every step against one store, starting from a fresh copy of the generated ERP.

    With `repeat` > 1 the two steps the targets are about, the initial sync (each time into an empty store) and
    the no-change resync, run that many times, each against its own bare read; their row is the run with the
    median ratio, and `ratios` holds every run's. With `contacts` (an ERP made with contacts) the sync reads the
    contacts query too, and every bare read reads both queries; the 1 % and 5 % steps still change customers."""
    work = out / (f"{store}-contacts" if contacts else store)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    erp = work / "erp.db"
    shutil.copy(base_erp, erp)
    drop = None
    if store == "postgresql":
        store_url, empty, drop = _postgres_database()
    elif store == "mariadb":
        store_url, empty, drop = _mariadb_database()
    else:
        store_url, empty = f"sqlite:///{work / 'store.db'}", _sqlite_emptier(work / "store.db")
    state = {"dir": str(work), "erp": str(erp), "store_url": store_url, "mail_dir": str(work / "mail"),
             "deliver_limit": deliver_limit}  # fmt: skip
    if contacts:
        state["contacts"] = True
    if whole_process:
        state["whole_process"] = True
    measure = _measure_command if whole_process else _measure
    rows: list[dict[str, Any]] = []
    try:
        bare = _reference(state)
        rows.append({"step": "bare read (reference, both queries)" if contacts else "bare read (reference)", **bare})
        for step, label, prepare in (
            ("initial", "initial sync", None),
            ("nochange", "no-change resync", None),
            ("change_1pct", "resync, 1 % changed a field", lambda: change_phones(erp, 0.01)),
            ("untag_5pct", "resync, 5 % lost the tag", lambda: untag(erp, 0.05)),
            ("deliver", "mail deliver (file)", None),
        ):
            if prepare:
                prepare()
            runs = []
            for attempt in range(repeat if step in ("initial", "nochange") else 1):
                if step == "initial" and attempt:
                    empty()
                    shutil.rmtree(state["mail_dir"], ignore_errors=True)
                # Each sync gets its own reference, read right before it: a shared machine's speed drifts by
                # 10-15 % over a minute, and a ratio to a reference read minutes earlier would measure the drift.
                before = _reference(state)["seconds"] if step != "deliver" else bare["seconds"]
                runs.append({**measure(step, state), "bare_seconds": before})
            rows.append({"step": label, **(_median_of(runs) if len(runs) > 1 else runs[0])})
    finally:
        if drop:
            drop()
    rows[0]["bare_seconds"] = bare["seconds"]
    for row in rows:
        row["store"] = store
        row["customers"] = customers
        row["ratio"] = row["seconds"] / row["bare_seconds"]
        row["records_per_s"] = row["records"] / row["seconds"] if row["seconds"] else 0.0
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    lines = [
        "| store | N | step | seconds | bare read before (s) | × bare read | records/s | peak RSS (MiB) | outcome |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if "created" in r:
            outcome = (
                f"created {r['created']}, updated {r['updated']}, removed {r['removed']}, unchanged {r['unchanged']}"
            )
        elif "sent" in r:
            outcome = f"sent {r['sent']}, pending {r['pending_left']}"
        elif "contact_rows" in r:
            outcome = f"{r['customer_rows']} customer + {r['contact_rows']} contact rows"
        else:
            outcome = f"{r['records']} rows"
        ratio = "—" if "sent" in r else f"{r['ratio']:.2f}"  # mail delivery is not a read: no ratio
        if len(r.get("ratios", ())) > 1:
            ratio += f" (median of {len(r['ratios'])}: {min(r['ratios']):.2f}–{max(r['ratios']):.2f})"
        before = "—" if "sent" in r else f"{r['bare_seconds']:.2f}"
        lines.append(
            f"| {r['store']} | {r['customers']:,} | {r['step']} | {r['seconds']:.2f} | {before} | {ratio} |"
            f" {r['records_per_s']:,.0f} | {r['peak_rss_mb']:.0f} | {outcome} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000, help="ERP size (default 100,000)")
    parser.add_argument(
        "--contacts",
        action="store_true",
        help="give the ERP about 1.5 contacts per customer and sync one account per eligible contact",
    )
    parser.add_argument("--store", choices=["sqlite", "postgresql", "mariadb", "both"], default="sqlite")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work folder (default bench/out)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--deliver-limit", type=int, default=20_000, help="mails to deliver (0: all queued)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of the initial and the no-change sync, each against its own bare read; the median is shown",
    )
    parser.add_argument(
        "--whole-process",
        action="store_true",
        help="time each step as the `integrator` command, start to exit, against the faster of a streamed and a"
        " buffered bare read",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.state)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / (f"erp-{args.customers}-contacts.db" if args.contacts else f"erp-{args.customers}.db")
    started = time.perf_counter()
    counts = generate_erp(base, args.customers, contacts=args.contacts)
    made = f" and {counts['contacts']:,} contacts" if args.contacts else ""
    print(f"generated {counts['customers']:,} customers ({counts['tagged']:,} tagged){made} in "
          f"{time.perf_counter() - started:.1f} s: {base}", file=sys.stderr)  # fmt: skip
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows: list[dict[str, Any]] = []
    for store in stores:
        rows += run_store(
            store,
            base,
            args.out,
            args.customers,
            args.deliver_limit or None,
            max(1, args.repeat),
            args.contacts,
            args.whole_process,
        )
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
