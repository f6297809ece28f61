"""What every route needs from the running server: the config, the store and the bound on password hashing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.engine import Engine

from integrator.config import Config

__all__ = ["ApiContext", "context_of"]


@dataclass
class ApiContext:
    """Shared by the app's routes (kept on `app.state.context`)."""

    config: Config
    engine: Engine
    _hashing: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._hashing = threading.BoundedSemaphore(self.config.api.max_hash_concurrency)

    @contextmanager
    def hashing(self) -> Iterator[None]:
        """Hold one of the few slots for argon2 work (~64 MiB each): a flood of logins waits instead of
        exhausting memory."""
        with self._hashing:
            yield


def context_of(request: Request) -> ApiContext:
    """FastAPI dependency: the running app's context."""
    return request.app.state.context  # type: ignore[no-any-return]
