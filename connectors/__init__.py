"""Connectors: where customer records come from, chosen by `[source] kind`.

A plain registry: adding a connector is one entry in `_connectors()` (read as `CONNECTORS`), and an unknown
kind is an error that lists the valid ones. The connector modules are imported when first asked for: the ODBC
reader process imports this package too, and should not pay for the CSV connector or the config models it
never uses at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from integrator.connectors.base import Connector
from integrator.errors import ConfigError

if TYPE_CHECKING:
    from integrator.config import SourceConfig
    from integrator.connectors.csv import CsvConnector
    from integrator.connectors.odbc import OdbcConnector

__all__ = ["CONNECTORS", "Connector", "CsvConnector", "OdbcConnector", "make_connector"]


def _connectors() -> dict[str, Callable[[SourceConfig], Connector]]:
    from integrator.connectors.csv import CsvConnector
    from integrator.connectors.odbc import OdbcConnector

    return {"odbc": OdbcConnector, "csv": CsvConnector}


def __getattr__(name: str) -> Any:
    """`CONNECTORS` (`[source] kind` -> the connector class that reads it) and the connector classes."""
    if name == "CONNECTORS":
        return _connectors()
    if name == "CsvConnector":
        from integrator.connectors.csv import CsvConnector

        return CsvConnector
    if name == "OdbcConnector":
        from integrator.connectors.odbc import OdbcConnector

        return OdbcConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_connector(source: SourceConfig) -> Connector:
    """The connector for `source`; raises `ConfigError` for an unknown kind or a bad column mapping."""
    connectors = _connectors()
    try:
        factory = connectors[source.kind]
    except KeyError:
        raise ConfigError(
            f"[source] kind {source.kind!r} is not a known connector", [f"valid kinds: {', '.join(connectors)}"]
        ) from None
    return factory(source)
