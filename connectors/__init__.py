"""Connectors: where customer records come from, chosen by `[source] kind`.

A plain registry: adding a connector is one entry in `CONNECTORS`, and an unknown kind is an error that lists
the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import Connector
from connectors.csv import CsvConnector
from connectors.odbc import OdbcConnector
from integrator.config import SourceConfig
from integrator.errors import ConfigError

__all__ = ["CONNECTORS", "Connector", "CsvConnector", "OdbcConnector", "make_connector"]

CONNECTORS: dict[str, Callable[[SourceConfig], Connector]] = {"odbc": OdbcConnector, "csv": CsvConnector}
"""`[source] kind` -> the connector class that reads it."""


def make_connector(source: SourceConfig) -> Connector:
    """The connector for `source`; raises `ConfigError` for an unknown kind or a bad column mapping."""
    try:
        factory = CONNECTORS[source.kind]
    except KeyError:
        raise ConfigError(
            f"[source] kind {source.kind!r} is not a known connector", [f"valid kinds: {', '.join(CONNECTORS)}"]
        ) from None
    return factory(source)
