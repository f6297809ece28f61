"""structlog set-up: JSON lines off a terminal (or when configured), and the run id on every line of a run."""

from __future__ import annotations

import logging
import sys

import structlog

from integrator.config import LoggingConfig

__all__ = ["configure_logging", "get_logger"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(config: LoggingConfig | None = None, *, stream=None) -> None:  # type: ignore[no-untyped-def]
    """Configure structlog once per process; logs go to stderr so stdout stays for command output."""
    config = config or LoggingConfig()
    stream = stream or sys.stderr
    use_json = config.format == "json" or (config.format == "auto" and not stream.isatty())
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[config.level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A lazy logger carrying `component=name` (configured on first use); the run id comes via contextvars."""
    return structlog.get_logger(component=name)
