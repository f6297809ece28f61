"""Property tests (hypothesis): over random sequences of ERP states, each sync reaches the state the identity
rules define, a second sync changes nothing, and a closed identity never comes back.

An ERP state maps a few customer ids (9 and 10 included: "smallest" is numeric) to a customer card: its tags in
various spellings, its active flag, an e-mail from a small pool (shared ones, case and whitespace variants, an
invalid one, none) and a phone. Ids missing from a state are customers deleted from the ERP; they may come back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.erp import SqliteErp, make_config

from integrator.store.db import open_store
from integrator.store.schema import account_events, accounts, outbox
from integrator.sync import run_sync
from tests.conftest import require_odbc_driver

pytestmark = pytest.mark.slow

ERP_IDS = (1, 2, 3, 9, 10)
TAGS = ("b2b", " B2B ", "vip, b2b", "vip", "")
EMAILS = ("a@firma.pl", " A@Firma.PL", "a@firma.pl  ", "b@firma.pl", "B@FIRMA.PL", "c@firma.pl", "zly-adres", None)
PHONES = ("600100200", "600100201")


class Card(NamedTuple):
    """One customer as the ERP holds it."""

    tags: str
    active: bool
    email: str | None
    phone: str


cards = st.builds(Card, st.sampled_from(TAGS), st.booleans(), st.sampled_from(EMAILS), st.sampled_from(PHONES))
erp_states = st.dictionaries(st.sampled_from(ERP_IDS), cards, max_size=len(ERP_IDS))


def wanted_logins(state: dict[int, Card]) -> dict[str, str]:
    """erp_id -> login of every customer the rules keep (tag, active, valid e-mail), before any login contest."""
    kept = {}
    for erp_id, card in state.items():
        tagged = "b2b" in {t.strip().lower() for t in card.tags.split(",")}
        if tagged and card.active and card.email and "@" in card.email:
            kept[str(erp_id)] = card.email.strip().lower()
    return kept


class Live(NamedTuple):
    id: str
    login: str
    status: str


def read_store(engine: sa.Engine) -> tuple[dict[str, Live], set[str], tuple[Any, ...]]:
    """The live accounts by erp_id, the ids of closed identities, and a snapshot of every written row."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(accounts).order_by(accounts.c.id)).mappings().all()
        newest_activation = dict(
            conn.execute(
                sa.select(outbox.c.account_id, outbox.c.recipient)
                .where(outbox.c.kind == "activation")
                .order_by(outbox.c.id)
            ).all()
        )
        count = sa.select(sa.func.count())
        counts = tuple(conn.execute(count.select_from(table)).scalar_one() for table in (account_events, outbox))
    live_rows = [r for r in rows if r["status"] != "removed"]
    live = {r["erp_id"]: Live(r["id"], r["login"], r["status"]) for r in live_rows}
    assert len(live) == len(live_rows), "two live identities for one customer"
    assert len({r["login"] for r in live_rows}) == len(live_rows), "one login on two live accounts"
    for r in live_rows:  # the customer is always told at the address it logs in with
        if r["status"] == "pending_activation":
            assert newest_activation.get(r["id"]) == r["login"], ("newest activation mail", r["erp_id"])
    closed = {r["id"] for r in rows if r["status"] == "removed"}
    return live, closed, (tuple(tuple(r.values()) for r in rows), counts)


def check_identity_rules(wanted: dict[str, str], before: dict[str, Live], live: dict[str, Live]) -> None:
    """The state one sync must reach from `before`, given the logins the eligible customers ask for."""
    assert set(live) <= set(wanted), "a live account for a customer the rules leave out"
    holder = {account.login: erp_id for erp_id, account in live.items()}
    previous = {account.login: erp_id for erp_id, account in before.items()}
    candidates: dict[str, list[str]] = {}
    for erp_id, login in wanted.items():
        candidates.setdefault(login, []).append(erp_id)
    for login, asking in candidates.items():
        winner = holder.get(login)
        assert winner is not None, f"{login} is wanted by {asking} and held by nobody"
        owner = previous.get(login)
        if winner in asking:  # the owner keeps it, else the smallest erp_id wins
            assert winner == (owner if owner in asking else min(asking, key=int)), (login, asking, owner)
        else:  # only its owner may keep a login nobody won: it asked for another and lost that one
            assert winner == owner and live[winner] == before[winner], (login, asking, owner)
        for loser in asking:
            if loser != winner and loser in live:  # a loser keeps its old account exactly as it was
                assert live[loser] == before[loser], (login, loser)


def write_state(erp: SqliteErp, state: dict[int, Card]) -> None:
    erp.clear()
    for erp_id, card in state.items():
        erp.add(erp_id, email="", tags=card.tags, active=int(card.active), phone=card.phone)
        erp.set(erp_id, email=card.email)  # `add` would replace a NULL e-mail by a default one


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states=st.lists(erp_states, min_size=1, max_size=6))
def test_syncs_reach_the_identity_rules_and_converge(states: list[dict[int, Card]]) -> None:
    """After each ERP state one sync gives every eligible customer exactly one live account (unless it lost a
    shared login, to the owner or else the smallest erp_id, and then keeps its old account unchanged), shares
    no login, never reopens a closed identity (a re-added customer gets a new id), and a second sync writes
    nothing at all."""
    require_odbc_driver("SQLite3")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        erp = SqliteErp(tmp / "erp.db")
        config = make_config(erp, f"sqlite:///{tmp / 'store.db'}", tmp)
        engine = open_store(config.store.url)
        before: dict[str, Live] = {}
        closed: set[str] = set()
        ids_ever: dict[str, set[str]] = {}
        try:
            for state in states:
                write_state(erp, state)
                result = run_sync(config, engine=engine, allow_mass_removal=True)
                assert result.status == "ok", result.message
                live, now_closed, snapshot = read_store(engine)
                again = run_sync(config, engine=engine, allow_mass_removal=True)
                assert (again.created, again.updated, again.removed, again.mails_queued) == (0, 0, 0, 0)
                assert read_store(engine)[2] == snapshot, "a second sync wrote something"

                check_identity_rules(wanted_logins(state), before, live)
                assert not closed & {account.id for account in live.values()}, "a closed identity came back"
                for erp_id, account in live.items():
                    seen = ids_ever.setdefault(erp_id, set())
                    if erp_id not in before:  # a new or re-added customer: never an id it had before
                        assert account.id not in seen, ("re-added with an old id", erp_id)
                    seen.add(account.id)
                closed |= now_closed
                before = live
        finally:
            engine.dispose()
