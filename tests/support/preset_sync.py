"""A preset synced end to end, as the preset tests drive it: a config file naming the preset and its options,
`integrator sync --json` through click's runner, and the live accounts the SQLite store beside it holds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from integrator.cli import main
from integrator.store.db import open_store
from integrator.store.schema import accounts

__all__ = ["live", "sync", "write_preset_config"]


def write_preset_config(
    tmp_path: Path, connection_string: str, preset: str, options: str, attributes: Iterable[str], tag: str | None = None
) -> Path:
    """`tmp_path/config.toml`: the preset over `connection_string` with `options` (a TOML inline table), the
    `attributes` passed through, `[rules] tag` when given, an SQLite store and file mail beside it."""
    rules = f'[rules]\ntag = "{tag}"\n' if tag is not None else ""
    config = tmp_path / "config.toml"
    config.write_text(
        f"""[source]
kind = "odbc"
connection_string = {json.dumps(connection_string)}
preset = "{preset}"
preset_options = {options}
attributes = {json.dumps(list(attributes))}
{rules}[store]
url = "sqlite:///{tmp_path / "store.db"}"
[mail]
backend = "file"
deliver_after_sync = false
[mail.file]
directory = "mail"
""",
        encoding="utf-8",
    )
    return config


def sync(config: Path) -> dict[str, Any]:
    """`integrator sync --json` through click's runner: the command as ops run it, in this process (a process
    start costs seconds on a busy CI machine; each preset's tests run the installed command once too)."""
    done = CliRunner().invoke(main, ["sync", "--json", "--config", str(config)])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def live(config: Path) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The store's accounts that are not removed, by (erp_id, contact_id)."""
    engine = open_store(f"sqlite:///{config.parent / 'store.db'}")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(accounts).where(accounts.c.status != "removed")).mappings()
        found = {(row["erp_id"], row["contact_id"]): dict(row) for row in rows}
    engine.dispose()
    return found
