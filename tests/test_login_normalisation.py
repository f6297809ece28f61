"""One login per address: every spelling of an e-mail (NFC or NFD, Unicode or Punycode domain, any case) gives
the same login, on the e-mail rule, through a real sync, and in stores written before (migration 0002)."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from support.erp import SqliteErp, make_config

from integrator.records import Record, canonical_login, normalize_login
from integrator.rules import EmailRule
from integrator.store import db
from integrator.store.db import migrate, open_store
from integrator.store.queries import find_account
from integrator.sync import run_sync

NFC = "żaneta.łuk@café.pl"
NFD = unicodedata.normalize("NFD", NFC)
PUNYCODE = "żaneta.łuk@xn--caf-dma.pl"
UPPER = " ŻANETA.ŁUK@CAFÉ.PL "
SPELLINGS = (NFC, NFD, PUNYCODE, UPPER)


def record(email: str | None, erp_id: str = "1") -> Record:
    return Record(erp_id=erp_id, name="Firma", email=email, tags=frozenset({"b2b"}))


# -- the login and the rule ------------------------------------------------------------------------------------
def test_every_spelling_of_one_address_is_one_login() -> None:
    """NFD, Punycode, capitals and stray spaces all give the NFC, Unicode-domain, lower-case login."""
    assert NFD != NFC
    assert {normalize_login(s) for s in SPELLINGS} == {NFC}
    assert normalize_login("Biuro@XN--CAF-DMA.PL") == normalize_login("biuro@café.pl") == "biuro@café.pl"


def test_the_e_mail_rule_accepts_every_spelling_and_judges_the_login() -> None:
    """The rule keeps each spelling, with or without its fast path, and still rejects what is no address."""
    for fast_path in (True, False):
        rule = EmailRule(fast_path=fast_path)
        assert [rule(record(s)) for s in SPELLINGS] == [None] * 4
        assert rule(record("żaneta@@café.pl")) == "invalid_email"
        assert rule(record("biuro@xn--zz-invalid.pl")) == "invalid_email"
        assert rule(record("  ")) == "missing_email"


def test_dotted_capital_i_and_sharp_s_follow_unicode_lower_casing() -> None:
    """`İ` lower-cases to `i` + U+0307 (no Turkish locale is guessed), so `İNFO@` is not `info@`; `ß` stays `ß`
    (casefold's `ss` would be another mailbox). Both stay valid addresses and normalise to themselves."""
    dotted = normalize_login("İNFO@firma.pl")
    assert dotted == "i\u0307nfo@firma.pl" != normalize_login("INFO@firma.pl")
    assert normalize_login(dotted) == dotted and EmailRule()(record("İNFO@firma.pl")) is None
    assert normalize_login("Straße@Firma.de") == "straße@firma.de"


def test_an_invalid_address_is_only_trimmed_and_lower_cased() -> None:
    """A rejected address still gives a deterministic login-ish string."""
    assert normalize_login("  Zły Adres@@Café.PL ") == "zły adres@@café.pl"
    assert canonical_login("Zły Adres@@Café.PL") == ("zły adres@@café.pl", False)


@settings(max_examples=3000, deadline=None)
@given(st.text(st.characters(max_codepoint=127), max_size=40))
def test_the_ascii_fast_path_gives_the_validators_login(text: str) -> None:
    """Plain ASCII skips email-validator: it must come out exactly as email-validator's normal form would."""
    assert normalize_login(text) == canonical_login(text.strip())[0]


ADDRESS_PARTS = st.text(st.sampled_from("abzAZ09.-_+żŻéÉ\u0301İıßΣςＡ\u212a"), min_size=1, max_size=12)


@settings(max_examples=3000, deadline=None)
@given(ADDRESS_PARTS, ADDRESS_PARTS, st.sampled_from(["pl", "PL", "com", "xn--p1ai"]))
def test_a_login_normalises_to_itself(local: str, domain: str, tld: str) -> None:
    """Normalising a login again never changes it, and a valid login is a valid address as it stands."""
    login, valid = canonical_login(f"{local}@{domain}.{tld}")
    assert normalize_login(login) == login
    if valid:
        assert canonical_login(login) == (login, True)


# -- through a real sync -----------------------------------------------------------------------------------------
def test_a_sync_gives_every_spelling_one_account(tmp_path: Path, sqlite_odbc: str, store_url: str) -> None:
    """Four customers typing one address four ways: one account (the smallest erp_id), three duplicate_email, and
    a lookup by any spelling finds it."""
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id, spelling in enumerate(SPELLINGS, start=1):
        erp.add(erp_id, email=spelling)
    engine = open_store(store_url)
    result = run_sync(make_config(erp, store_url, tmp_path), engine=engine)
    with engine.connect() as conn:
        live = conn.execute(sa.text("SELECT erp_id, login FROM accounts WHERE live_login IS NOT NULL")).all()
        found = {s: (find_account(conn, s) or {}).get("erp_id") for s in SPELLINGS}
    assert [tuple(r) for r in live] == [("1", NFC)]
    assert sorted((r["erp_id"], r["reasons"]) for r in result.rejections) == [
        (str(i), "duplicate_email") for i in (2, 3, 4)
    ]
    assert found == dict.fromkeys(SPELLINGS, "1")


# -- migration 0002: stores written with the old normalisation -----------------------------------------------------
def store_at_0001(url: str) -> sa.Engine:
    """A store whose schema is at revision 0001, as an older release left it."""
    engine = open_store(url, upgrade=False)
    with engine.begin() as conn:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(db._MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    return engine


def insert_accounts(engine: sa.Engine, rows: list[tuple[str, str, bool]]) -> dict[str, str]:
    """Accounts as revision 0001 holds them, from (erp_id, login, live); returns erp_id -> account id."""
    now = datetime(2026, 1, 1)
    ids = {}
    with engine.begin() as conn:
        table = sa.Table("accounts", sa.MetaData(), autoload_with=conn)
        for erp_id, login, live in rows:
            ids[erp_id] = str(uuid.uuid4())
            conn.execute(
                table.insert().values(
                    id=ids[erp_id], erp_id=erp_id, login=login, live_login=login if live else None,
                    live_erp_id=erp_id if live else None, status="active" if live else "removed",
                    blocked=False, must_change_password=False, fingerprint="0123456789abcdef",
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
    return ids


def test_migration_renormalises_logins_and_settles_collisions_loudly(store_url: str) -> None:
    """Row by row: lone logins take the normal form (closed identities too); of two live accounts that now share
    a login, the owner of the normal form keeps it, else the smallest erp_id ("9" before "10") takes it, and the
    others keep their stored login with a fingerprint the next sync will not skip; a warning names them."""
    engine = store_at_0001(store_url)
    jan_nfd = unicodedata.normalize("NFD", "jan@café.pl")
    luk_nfd = unicodedata.normalize("NFD", "łukasz@firma.pl")
    ids = insert_accounts(
        engine,
        [
            ("10", jan_nfd, True),  # collides with 9, larger erp_id (though "10" < "9" as text): keeps its login
            ("9", "jan@xn--caf-dma.pl", True),  # takes jan@café.pl
            ("2", "ola@café.pl", True),  # already holds the normal form: keeps it
            ("1", "ola@xn--caf-dma.pl", True),  # smaller, but the login is held: keeps its own
            ("3", luk_nfd, True),  # alone: NFC
            ("4", "x@xn--caf-dma.pl", False),  # closed: its login is renormalised, it stays closed
            ("6", "jan@xn--caf-dma.pl", False),  # closed, same login as 9's: no collision (not live)
            ("5", "plain@firma.pl", True),  # untouched
        ],
    )
    with capture_logs() as logs:
        migrate(engine)
    with engine.connect() as conn:
        got = {
            r.id: (r.login, r.live_login, r.fingerprint)
            for r in conn.execute(sa.text("SELECT id, login, live_login, fingerprint FROM accounts"))
        }
    kept, cleared = "0123456789abcdef", ""
    assert got == {
        ids["10"]: (jan_nfd, jan_nfd, cleared),
        ids["9"]: ("jan@café.pl", "jan@café.pl", kept),
        ids["2"]: ("ola@café.pl", "ola@café.pl", kept),
        ids["1"]: ("ola@xn--caf-dma.pl", "ola@xn--caf-dma.pl", cleared),
        ids["3"]: ("łukasz@firma.pl", "łukasz@firma.pl", kept),
        ids["4"]: ("x@café.pl", None, kept),
        ids["6"]: ("jan@café.pl", None, kept),
        ids["5"]: ("plain@firma.pl", "plain@firma.pl", kept),
    }
    warnings = sorted(
        (e["login"], e["kept_by"]["erp_id"], [u["erp_id"] for u in e["unchanged"]])
        for e in logs
        if e["event"] == "login_collision" and e["log_level"] == "warning"
    )
    assert warnings == [("jan@café.pl", "9", ["10"]), ("ola@café.pl", "2", ["1"])]


def test_after_the_migration_the_next_sync_rejects_the_loser_and_keeps_its_account(
    tmp_path: Path, sqlite_odbc: str
) -> None:
    """The loser of a migration collision is judged by the next sync: duplicate_email, its account unchanged."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store_at_0001(url)
    jan_nfd = unicodedata.normalize("NFD", "jan@café.pl")
    ids = insert_accounts(engine, [("10", jan_nfd, True), ("9", "jan@xn--caf-dma.pl", True)])
    migrate(engine)
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(9, email="jan@xn--caf-dma.pl")
    erp.add(10, email=jan_nfd)
    result = run_sync(make_config(erp, url, tmp_path), engine=engine)
    with engine.connect() as conn:
        live = dict(conn.execute(sa.text("SELECT id, live_login FROM accounts WHERE status != 'removed'")).all())
    assert [(r["erp_id"], r["reasons"]) for r in result.rejections] == [("10", "duplicate_email")]
    assert live == {ids["9"]: "jan@café.pl", ids["10"]: jan_nfd}
