"""The store's schema: migrations build exactly what the code expects, on every backend, and the database
itself keeps one live account per login and per customer."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from integrator.clock import utcnow
from integrator.store.db import _MIGRATIONS, SQLITE_PAGE_SIZE, _alembic_config, migrate, newest_revision, open_store
from integrator.store.schema import accounts, metadata


def test_migrations_match_the_table_definitions(store_url: str) -> None:
    """After every migration has run, Alembic finds no difference between the database and schema.py."""
    engine = open_store(store_url, upgrade=False)
    migrate(engine, from_scratch=False)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if "alembic_version" not in str(d)]
    engine.dispose()
    assert differences == []


def _everything(engine: sa.Engine) -> dict[str, object]:
    """What the database holds, table by table: columns (type, nullability, default, comment; by name, since
    columns a migration added come last there), primary key, indexes, unique constraints, foreign keys and rows
    (as sets of column name and value)."""
    inspector = sa.inspect(engine)
    found: dict[str, object] = {}
    with engine.connect() as conn:
        for name in sorted(inspector.get_table_names()):
            columns = sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default")), c.get("comment"))
                             for c in inspector.get_columns(name))  # fmt: skip
            indexes = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                             for i in inspector.get_indexes(name))  # fmt: skip
            uniques = sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(name))
            keys = sorted((k["constrained_columns"], k["referred_table"]) for k in inspector.get_foreign_keys(name))
            rows = sorted(sorted(row.items()) for row in conn.execute(sa.text(f"SELECT * FROM {name}")).mappings())
            pk = inspector.get_pk_constraint(name)["constrained_columns"]
            found[name] = {"columns": columns, "pk": pk, "indexes": indexes, "uniques": uniques, "fks": keys,
                           "rows": rows}  # fmt: skip
    return found


def test_a_new_store_is_created_as_the_migrations_would_build_it(store_url: str) -> None:
    """A first run creates an empty store from the table definitions and stamps it (no Alembic loaded, no
    migration run); that store is the one the migrations build, to the last column comment, index and
    seeded row, on every backend, and a later migration goes on from its stamp."""
    created = open_store(store_url)
    with created.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [newest_revision()]
    fresh = _everything(created)
    with created.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE alembic_version"))
    migrate(created, from_scratch=False)
    migrated = _everything(created)
    created.dispose()
    assert set(fresh) == set(migrated) and len(fresh) == len(metadata.tables) + 1
    for name in sorted(migrated):
        assert fresh[name] == migrated[name], name
    assert fresh["mail_send_gate"]["rows"] == [[("claims", 0), ("name", "send")]]  # type: ignore[index]


def test_open_store_is_idempotent(store_url: str) -> None:
    """Opening an up-to-date store again migrates nothing and loses nothing."""
    engine = open_store(store_url)
    now = utcnow()
    row = {"id": "a", "erp_id": "1", "login": "x@example.pl", "live_login": "x@example.pl", "live_erp_id": "1",
           "status": "active", "blocked": False, "must_change_password": False, "fingerprint": "0" * 16,
           "created_at": now, "updated_at": now}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(accounts.insert().values(**row))
    engine.dispose()
    again = open_store(store_url)
    with again.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar() == 1
    again.dispose()


def test_the_newest_migration_file_is_alembics_only_head() -> None:
    """Opening a store compares its revision with the newest file's without loading Alembic: that shortcut holds
    only while the newest file is the one head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [newest_revision()]


def test_opening_a_current_store_does_not_load_alembic(tmp_path: Path) -> None:
    """A first run creates its store from the table definitions and every later run finds the schema current with
    one query, in processes that never import Alembic; a store one revision behind is still upgraded by it."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    program = "import sys; from integrator.store.db import open_store; open_store(sys.argv[1]); print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"  # noqa: E501
    run = [sys.executable, "-c", program, url]
    first = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert first.strip() == "[]"  # a new store: created at the newest revision
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip() == "[]"
    from alembic import command

    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the store as the previous release left it
        command.downgrade(_alembic_config(conn), "-1")
    engine.dispose()
    assert "alembic.command" in subprocess.run(run, capture_output=True, text=True, check=True).stdout
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(newest_revision(),)]


def test_database_refuses_two_live_accounts_for_one_login_or_customer(store_url: str) -> None:
    """The unique live_login and live_key indexes hold even if the sync's own logic were wrong; one customer may
    have several live accounts, one per contact."""
    engine = open_store(store_url)
    now = utcnow()

    def account(
        account_id: str, erp_id: str, login: str, live: bool = True, contact: str | None = None
    ) -> dict[str, object]:
        key = erp_id if contact is None else f"{erp_id}\x1f{contact}"
        return {"id": account_id, "erp_id": erp_id, "contact_id": contact, "login": login,
                "live_login": login if live else None, "live_erp_id": erp_id if live else None,
                "live_key": key if live else None, "status": "active" if live else "removed",
                "blocked": False, "must_change_password": False, "fingerprint": "0" * 16,
                "created_at": now, "updated_at": now}  # fmt: skip

    with engine.begin() as conn:
        conn.execute(accounts.insert(), [account("a", "1", "x@example.pl"), account("b", "1", "x@example.pl", False)])
    for clash in (account("c", "2", "x@example.pl"), account("d", "1", "y@example.pl")):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(accounts.insert().values(**clash))
    with engine.begin() as conn:  # two contacts of customer 3, each with its own live account
        conn.execute(accounts.insert(), [account("e", "3", "e@example.pl", contact="1"),
                                         account("f", "3", "f@example.pl", contact="2")])  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(accounts.insert().values(**account("g", "3", "g@example.pl", contact="2")))
    engine.dispose()


def test_a_new_sqlite_store_gets_large_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    """16 KiB pages are chosen when the store is created; a store made with SQLite's default keeps 4 KiB pages
    (changing them would need a VACUUM) and still opens and migrates."""
    fresh = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    with fresh.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE == 16384
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    fresh.dispose()

    old_path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old_path)) as old:
        old.execute("CREATE TABLE kept (x INTEGER)")  # the database now exists with 4 KiB pages
        assert old.execute("PRAGMA page_size").fetchone()[0] == 4096
    existing = open_store(f"sqlite:///{old_path}")
    with existing.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar() == 0
    existing.dispose()


def test_logins_and_keys_are_compared_exactly_on_every_store(store_url: str) -> None:
    """`café` is not `cafe`, `A1` is not `a1`: two live accounts may hold them, and a lookup finds its own (MariaDB's
    default collation would take them for one)."""
    engine = open_store(store_url)
    now = utcnow()
    rows = [
        {"id": account_id, "erp_id": key, "login": login, "live_login": login, "live_erp_id": key, "live_key": key,
         "status": "active", "blocked": False, "must_change_password": False, "fingerprint": "0" * 16,
         "created_at": now, "updated_at": now}
        for account_id, key, login in (("a", "A1", "jan@café.pl"), ("b", "a1", "jan@cafe.pl"))
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(accounts.insert(), rows)
        found = conn.execute(sa.select(accounts.c.id).where(accounts.c.live_login == "jan@cafe.pl")).scalars().all()
        keyed = conn.execute(sa.select(accounts.c.id).where(accounts.c.live_key == "a1")).scalars().all()
    assert (found, keyed) == (["b"], ["b"])
    engine.dispose()


@pytest.mark.postgres
def test_an_existing_postgresql_store_compares_its_keys_in_the_c_collation(pg_url: str) -> None:
    """Migration 0008 moves a PostgreSQL store's ids, logins, keys and outbox codes to the "C" collation (cheaper
    comparisons and index builds; equality is the same): its rows stay, the foreign key of `account_secrets` still
    refuses an unknown account, and the indexes are used for lookups as before."""
    engine = open_store(pg_url, upgrade=False)
    with engine.begin() as conn:
        from alembic import command

        command.upgrade(_alembic_config(conn), "0007")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(accounts.insert().values(
            id="a", erp_id="E1", login="jan@café.pl", live_login="jan@café.pl", live_erp_id="E1", live_key="E1",
            status="active", blocked=False, must_change_password=False, fingerprint="0" * 16, created_at=now,
            updated_at=now,
        ))  # fmt: skip
        conn.exec_driver_sql(
            "INSERT INTO account_secrets (account_id, kind, secret_hash, created_at, expires_at)"
            " VALUES ('a', 'activation_link', 'x', now(), now())"
        )
    migrate(engine)
    collated = """SELECT table_name || '.' || column_name FROM information_schema.columns
                  WHERE table_schema = current_schema() AND collation_name = 'C' ORDER BY 1"""
    with engine.connect() as conn:
        assert conn.exec_driver_sql(collated).scalars().all() == [
            "account_events.account_id", "account_secrets.account_id", "accounts.erp_id", "accounts.id",
            "accounts.live_erp_id", "accounts.live_key", "accounts.live_login", "accounts.login",
            "impersonations.account_id", "outbox.account_id", "outbox.kind", "outbox.status",
        ]  # fmt: skip
        assert conn.execute(sa.select(accounts.c.id).where(accounts.c.live_login == "jan@café.pl")).scalar() == "a"
        conn.exec_driver_sql("SET enable_seqscan = off")  # one row: only so is the index's use shown
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN SELECT id FROM accounts WHERE live_key = 'E1'").scalars())
        assert "ux_accounts_live_key" in plan
        with pytest.raises(sa.exc.IntegrityError, match="account_secrets_account_id_fkey"):
            conn.exec_driver_sql(
                "INSERT INTO account_secrets (account_id, kind, secret_hash, created_at, expires_at)"
                " VALUES ('b', 'activation_link', 'x', now(), now())"
            )
    engine.dispose()
