"""integrator: keeps a wholesaler's B2B portal accounts in step with its ERP's customers.

Connectors (`connectors/`) stream records, rules (`rules/`) decide who is eligible, `integrator.reconcile`
plans, `integrator.store` applies, and `integrator.mail` delivers what the outbox holds.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("integrator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
