"""Errors grouped by what the caller should do with them.

* `FatalSyncError`: the run stops, applies nothing further and removes nobody.
* `TransientError` (mixin): worth retrying with backoff (tenacity retries exactly these).
* `ConfigError`: bad configuration or usage; every problem is collected, the CLI exits 2.
* `GuardRefusal`: a safety guard refused the run; the CLI exits 4.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FatalSyncError",
    "GuardRefusal",
    "IntegratorError",
    "LockBusy",
    "StoreConnectionLost",
    "SourceError",
    "StoreError",
    "TransientError",
    "TransientSourceError",
]


class IntegratorError(Exception):
    """Base of every error the product raises on purpose."""


class TransientError:
    """Mixin: the operation may succeed if tried again later."""


class ConfigError(IntegratorError, ValueError):
    """The configuration (or a command line) is wrong; `errors` lists every problem found."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = list(errors or [])
        super().__init__(message if not self.errors else message + "\n  " + "\n  ".join(self.errors))


class FatalSyncError(IntegratorError):
    """The run cannot go on; nothing more is applied and nobody is removed."""


class SourceError(FatalSyncError):
    """The ERP source could not be read (bad driver, bad SQL, missing column, lost connection)."""


class TransientSourceError(TransientError, SourceError):
    """The ERP could not be reached right now (connect refused, timeout)."""


class StoreError(FatalSyncError):
    """The account store could not be reached or rejected the schema."""


class StoreConnectionLost(StoreError):
    """The store's connection dropped (server restart, failover, a killed session) while the run worked.

    Not a problem of any record: the batch in flight was rolled back whole, nothing of it is quarantined, and the
    run ends; the next run converges from what was committed."""

    def __init__(self, step: str, detail: str) -> None:
        self.step = step
        super().__init__(
            f"the store's connection was lost during {step} ({detail}); nothing of the interrupted batch was applied,"
            " and the next sync continues from what was committed"
        )


class GuardRefusal(IntegratorError):
    """A safety guard refused the run; `details` lists what was refused and why."""

    def __init__(self, message: str, details: list[dict[str, str]] | None = None) -> None:
        self.details = list(details or [])
        super().__init__(message)


class LockBusy(IntegratorError):
    """Another sync holds the store's lock."""
