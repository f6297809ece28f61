"""`integrator api-client add|list|rotate|remove`: secrets printed once and stored only as hashes, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from integrator.api.clients import authenticate_client, list_clients
from integrator.cli import main
from integrator.clock import utcnow
from integrator.store.db import open_store
from integrator.store.schema import api_client_secrets, api_clients


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A config whose store is SQLite or a fresh PostgreSQL database."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    path = tmp_path / "config.toml"
    path.write_text(f'[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nurl = "{url}"\n', encoding="utf-8")
    return path


def _url(config: Path) -> str:
    return config.read_text().split('url = "')[1].split('"')[0]


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)], catch_exceptions=False)


def test_add_prints_the_secret_once_and_stores_only_its_hash(config: Path) -> None:
    """--json gives {client_id, client_secret}; the store has an argon2 hash that verifies, never the secret."""
    done = _run(config, "api-client", "add", "sklep", "--scope", "portal", "--scope", "staff", "--json")
    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert set(printed) == {"client_id", "client_secret"}
    engine = open_store(_url(config))
    with engine.connect() as conn:
        stored = [
            str(v) for table in (api_clients, api_client_secrets) for row in conn.execute(sa.select(table)) for v in row
        ]
    assert printed["client_secret"] not in " ".join(stored)
    assert any(v.startswith("$argon2id$") for v in stored)
    client = authenticate_client(engine, printed["client_id"], printed["client_secret"])
    assert client is not None and client.scopes == ("portal", "staff")
    assert authenticate_client(engine, printed["client_id"], printed["client_secret"] + "x") is None
    listed = _run(config, "api-client", "list", "--json")
    assert printed["client_secret"] not in listed.output
    assert [(c["name"], c["scopes"], c["valid_secrets"]) for c in json.loads(listed.stdout)] == [
        ("sklep", ["portal", "staff"], 1)
    ]


def test_add_refuses_a_taken_name_and_an_unknown_scope(config: Path) -> None:
    """A second client of one name and a scope that does not exist are usage errors (exit 2) naming the problem."""
    assert _run(config, "api-client", "add", "sklep", "--scope", "portal").exit_code == 0
    again = _run(config, "api-client", "add", "sklep", "--scope", "staff")
    assert again.exit_code == 2 and "already exists" in again.stderr
    unknown = _run(config, "api-client", "add", "inny", "--scope", "admin")
    assert unknown.exit_code == 2 and "admin" in unknown.stderr
    assert [c["name"] for c in list_clients(open_store(_url(config)))] == ["sklep"]


def test_rotate_keeps_the_old_secret_for_the_set_time(config: Path) -> None:
    """After rotate both secrets work; once the old one's time is up only the new one does."""
    old = json.loads(_run(config, "api-client", "add", "sklep", "--scope", "portal", "--json").stdout)
    new = json.loads(_run(config, "api-client", "rotate", "sklep", "--keep-old", "1h", "--json").stdout)
    assert new["client_id"] == old["client_id"] and new["client_secret"] != old["client_secret"]
    engine = open_store(_url(config))
    assert authenticate_client(engine, old["client_id"], old["client_secret"]) is not None
    assert authenticate_client(engine, new["client_id"], new["client_secret"]) is not None
    assert list_clients(engine)[0]["valid_secrets"] == 2
    with engine.begin() as conn:  # the hour is over
        conn.execute(
            api_client_secrets.update()
            .where(api_client_secrets.c.expires_at.is_not(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert authenticate_client(engine, old["client_id"], old["client_secret"]) is None
    assert authenticate_client(engine, new["client_id"], new["client_secret"]) is not None
    bad = _run(config, "api-client", "rotate", "sklep", "--keep-old", "soon")
    assert bad.exit_code == 2 and "--keep-old" in bad.output


def test_remove_deletes_the_client_and_its_secrets(config: Path) -> None:
    """A removed client no longer authenticates; removing an unknown one is exit 2 with the one not-found line."""
    made = json.loads(_run(config, "api-client", "add", "sklep", "--scope", "portal", "--json").stdout)
    done = _run(config, "api-client", "remove", "sklep")
    assert done.exit_code == 0 and made["client_id"] in done.stdout
    assert authenticate_client(open_store(_url(config)), made["client_id"], made["client_secret"]) is None
    missing = _run(config, "api-client", "remove", "sklep")
    assert missing.exit_code == 2 and "error: no API client with name or id 'sklep'" in missing.stderr


def test_plain_add_names_the_id_and_secret(config: Path) -> None:
    """Without --json the id and the secret are printed one a line, with a warning on stderr that it is shown once."""
    done = _run(config, "api-client", "add", "sklep", "--scope", "sales_rep")
    assert done.exit_code == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("client_id: cl_") and lines[1].startswith("client_secret: ")
    assert "shown this once" in done.stderr
