"""`integrator daemon`: sync and deliver mail on the configured schedule until stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrator.cli.app import config_option, handle_errors, main

if TYPE_CHECKING:
    from integrator.config import Config

__all__ = ["daemon_command"]


@main.command("daemon")
@config_option
@handle_errors
def daemon_command(config: Config) -> None:
    """Run syncs ([schedule] sync) and mail delivery ([schedule] mail) until SIGTERM/SIGINT."""
    from integrator.daemon import run_daemon

    run_daemon(config)
