"""Fixtures for the portal API tests: a store on SQLite or PostgreSQL, its config, and the API served on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.api_server import FAST_HASHER, RunningApi, api_config, running_api

from integrator.mail import secrets
from integrator.store.db import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def api_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL: SQLite, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def api_engine(api_store_url: str, fast_argon2: None) -> Iterator[Engine]:
    """The migrated store."""
    engine = open_store(api_store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id with light parameters (the product's take ~0.3 s a check on this machine): the API tests make
    hundreds of checks. The timing test puts the real ones back (`real_argon2`)."""
    monkeypatch.setattr(secrets, "_hasher", FAST_HASHER)
    monkeypatch.setattr(secrets, "_DUMMY_HASH", FAST_HASHER.hash("never-a-real-password"))


@pytest.fixture
def api(tmp_path: Path, api_store_url: str, api_engine: Engine) -> Iterator[RunningApi]:
    """The API served by uvicorn on a loopback port over the store."""
    with running_api(api_config(tmp_path, api_store_url), api_engine) as running:
        yield running
