"""Property tests: over random sequences of ERP states, syncs converge and the identity rules always hold."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.erp import SqliteErp, make_config

from integrator.store.db import open_store
from integrator.store.schema import accounts, outbox
from integrator.sync import run_sync
from tests.conftest import require_odbc_driver

pytestmark = pytest.mark.slow

EMAILS = ["a@firma.pl", " A@Firma.PL", "b@firma.pl", "c@firma.pl", "zly-adres", None]
ERP_IDS = ["1", "2", "3", "9", "10"]

customer = st.tuples(st.booleans(), st.booleans(), st.integers(0, len(EMAILS) - 1))  # tagged, active, e-mail
erp_state = st.dictionaries(st.sampled_from(ERP_IDS), customer, max_size=len(ERP_IDS))


def login_of(email: str | None) -> str | None:
    return email.strip().lower() if email and "@" in email else None


def eligible(state: dict[str, tuple[bool, bool, int]]) -> dict[str, str]:
    """erp_id -> login of every customer the rules keep (before the duplicate-login contest)."""
    kept = {}
    for erp_id, (tagged, active, email) in state.items():
        login = login_of(EMAILS[email])
        if tagged and active and login:
            kept[erp_id] = login
    return kept


def snapshot(engine: sa.Engine) -> tuple[list[Any], int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(accounts.c.id, accounts.c.erp_id, accounts.c.login, accounts.c.status)).all()
        mails = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
    return sorted(tuple(r) for r in rows), mails


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states=st.lists(erp_state, min_size=1, max_size=4))
def test_syncs_converge_and_keep_the_identity_rules(states: list[dict[str, tuple[bool, bool, int]]]) -> None:
    """Each sync reaches the eligible set (one live account each, unique logins, the right contest winner),
    a second sync changes nothing, and a closed identity never comes back."""
    require_odbc_driver("SQLite3")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        erp = SqliteErp(tmp / "erp.db")
        config = make_config(erp, f"sqlite:///{tmp / 'store.db'}", tmp)
        engine = open_store(config.store.url)
        closed: set[str] = set()
        holders: dict[str, str] = {}  # login -> erp_id holding it after the previous sync
        for state in states:
            erp.clear()
            for erp_id, (tagged, active, email) in state.items():
                erp.add(int(erp_id), email=EMAILS[email] or "", tags="b2b" if tagged else "vip", active=int(active))
                if EMAILS[email] is None:
                    erp.set(int(erp_id), email=None)
            result = run_sync(config, engine=engine, allow_mass_removal=True)
            assert result.status == "ok", result.message
            before = snapshot(engine)
            again = run_sync(config, engine=engine, allow_mass_removal=True)
            assert (again.created, again.updated, again.removed) == (0, 0, 0)
            assert snapshot(engine) == before

            rows = before[0]
            live = {erp_id: (account_id, login) for account_id, erp_id, login, status in rows if status != "removed"}
            assert len(live) == len([r for r in rows if r[3] != "removed"]), "two live identities for one customer"
            logins = [login for _, login in live.values()]
            assert len(logins) == len(set(logins)), "a login shared by two live accounts"
            assert not closed & {account_id for account_id, _ in live.values()}, "a closed identity came back"
            closed |= {account_id for account_id, _, _, status in rows if status == "removed"}

            wanted = eligible(state)
            by_login: dict[str, list[str]] = {}
            for erp_id, login in wanted.items():
                by_login.setdefault(login, []).append(erp_id)
            live_by_login = {login: erp_id for erp_id, (_, login) in live.items()}
            for login, candidates in by_login.items():
                holder = live_by_login.get(login)
                assert holder is not None, (login, candidates)  # wanted logins are never left unheld
                owner = holders.get(login)
                if holder in candidates:  # the owner keeps it, else the smallest erp_id wins
                    assert holder == (owner if owner in candidates else min(candidates, key=int))
                else:  # only an account that already had it, and lost another login, may keep it
                    assert holder == owner, (login, candidates, holder, owner)
            assert set(live) <= set(wanted), "an account for a customer the rules leave out"
            holders = {login: erp_id for erp_id, (_, login) in live.items()}
        engine.dispose()
