"""integrator: keeps a wholesaler's B2B portal accounts in step with its ERP's customers.

Connectors (`connectors/`) stream records, rules (`rules/`) decide who is eligible, `integrator.reconcile`
plans, `integrator.store` applies, and `integrator.mail` delivers what the outbox holds.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`__version__`, looked up when asked for: `importlib.metadata` would add 20 ms to the start of every
    process importing the package, the sync's ODBC reader process among them."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("integrator")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
