"""`integrator block` / `unblock`: ops or a sales rep stop (or allow again) an account's logins."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import click

from integrator.cli.app import config_option, handle_errors, main, not_found

if TYPE_CHECKING:
    from integrator.config import Config

__all__ = ["block_command", "unblock_command"]

_ACTOR_HELP = "Who acts (recorded in the account's history); default: the OS user."


@main.command("block")
@click.argument("login")
@click.option("--reason", required=True, help="Shown to the customer by the portal.")
@click.option("--actor", default=None, help=_ACTOR_HELP)
@config_option
@handle_errors
def block_command(config: Config, login: str, reason: str, actor: str | None) -> None:
    """Block LOGIN: it cannot log in until `unblock`; syncs keep its data current but never unblock it."""
    from integrator.admin import AccountNotFound, block
    from integrator.store.db import open_store

    try:
        changed = block(open_store(config.store.url), login, reason, actor or f"ops:{getpass.getuser()}")
    except AccountNotFound:
        not_found("live account", "login", login)
    click.echo(f"{login}: blocked" if changed else f"{login}: already blocked with that reason")


@main.command("unblock")
@click.argument("login")
@click.option("--actor", default=None, help=_ACTOR_HELP)
@config_option
@handle_errors
def unblock_command(config: Config, login: str, actor: str | None) -> None:
    """Lift the block on LOGIN."""
    from integrator.admin import AccountNotFound, unblock
    from integrator.store.db import open_store

    try:
        changed = unblock(open_store(config.store.url), login, actor or f"ops:{getpass.getuser()}")
    except AccountNotFound:
        not_found("live account", "login", login)
    click.echo(f"{login}: unblocked" if changed else f"{login}: was not blocked")
