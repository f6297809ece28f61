"""Fixtures shared by the mail and portal tests (import them into a test module to use them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from integrator.store.db import open_store
from support.smtp import SmtpServer, make_certificate


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store file in the test's folder."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """The migrated SQLite store."""
    engine = open_store(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback that records every message."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made once per session)."""
    return make_certificate(tmp_path_factory.mktemp("tls"))
