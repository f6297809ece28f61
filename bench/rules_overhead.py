"""Cost of the rule engine per ERP row, with and without the e-mail regex fast path, in one run.

    .venv/bin/python bench/rules_overhead.py [--records 200000] [--repeat 3]

Records are realistic: two thirds carry the tag, e-mails look like `jan.kowalski123@firma-handlowa.pl`, a few
are upper-case, Unicode, invalid or missing, a few customers are inactive. Prints µs per `evaluate()` (best of
`--repeat` passes) and how many logins the fast path settled on its own.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence

from integrator.config import RulesConfig
from integrator.records import Record, normalize_login
from integrator.rules import EmailRule, RuleEngine, build_engine, fast_accepts

FIRST = ["jan", "anna", "piotr", "katarzyna", "tomasz", "agnieszka", "marek", "ewa", "pawel", "magdalena"]
LAST = ["kowalski", "nowak", "wisniewski", "wojcik", "kaminska", "lewandowski", "zielinska", "szymanski"]
DOMAINS = [
    "firma-handlowa.pl",
    "hurtownia-budowlana.com.pl",
    "sklep24.pl",
    "gmail.com",
    "wp.pl",
    "onet.pl",
    "o2.pl",
    "interia.pl",
    "elektro-serwis.eu",
]


def make_email(rng: random.Random) -> str | None:
    """An ERP e-mail column: mostly plain, sometimes upper-case, Unicode, broken or empty."""
    roll = rng.random()
    if roll < 0.01:
        return None
    if roll < 0.015:
        return "brak"  # "none" typed into the column
    local = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(1000) if rng.random() < 0.5 else ''}"
    if rng.random() < 0.1:
        local = rng.choice(["biuro", "zamowienia", "faktury", "sklep"]) + ("+b2b" if rng.random() < 0.2 else "")
    email = f"{local}@{rng.choice(DOMAINS)}"
    if roll < 0.025:
        email = email.replace("@", "@@")
    elif roll < 0.035:
        email = "żaneta." + email  # SMTPUTF8 local part: the validator decides
    elif roll < 0.10:
        email = " " + email.title() + " "  # as typed into the ERP
    return email


def make_records(count: int, seed: int = 1) -> list[Record]:
    """`count` customers, two thirds tagged `b2b`, 2% inactive."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        tags = frozenset({"b2b"} if rng.random() < 2 / 3 else set())
        if rng.random() < 0.2:
            tags |= {rng.choice(["vip", "hurt", "detal"])}
        records.append(
            Record(
                erp_id=f"K{i:07d}",
                name=f"Klient {i}",
                email=make_email(rng),
                tags=tags,
                price_level=rng.choice(["hurt", "detal", "A", None]),
                active=rng.random() >= 0.02,
            )
        )
    return records


def per_record_us(engine: RuleEngine, records: Sequence[Record], repeat: int) -> float:
    """Best wall time of `repeat` passes of `evaluate` over `records`, in µs per record."""
    evaluate = engine.evaluate
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for record in records:
            evaluate(record)
        best = min(best, time.perf_counter() - start)
    return best / len(records) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    records = make_records(args.records)
    fast = build_engine(RulesConfig())
    slow = RuleEngine([EmailRule(fast_path=False) if rule.name == "email" else rule for rule in fast.rules])
    assert [fast.evaluate(r) for r in records] == [slow.evaluate(r) for r in records], "verdicts differ"

    logins = [normalize_login(r.email) for r in records]
    settled = sum(1 for login in logins if login and fast_accepts(login))
    kept = sum(fast.evaluate(r).keep for r in records)

    with_fast = per_record_us(fast, records, args.repeat)
    without = per_record_us(slow, records, args.repeat)
    print(f"records: {len(records):,}  kept: {kept:,}  fast path settled {settled / len(records):.1%} of e-mails")
    # µs per record is also seconds per million records.
    print(f"evaluate() with fast path:    {with_fast:6.2f} µs/record  ({with_fast:.2f} s per 1M rows)")
    print(f"evaluate() without fast path: {without:6.2f} µs/record  ({without:.2f} s per 1M rows)")
    print(f"speed-up: {without / with_fast:.1f}x")


if __name__ == "__main__":
    main()
