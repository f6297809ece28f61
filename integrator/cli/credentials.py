"""`integrator reset-password` / `resend-activation`: ops (or a sales rep) act on a customer's credentials.

Both queue a mail (the actor is recorded in the account's history) and, unless `--no-deliver`, deliver the
pending mail right away; the secret itself is minted at delivery and never shown here.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from integrator.cli.app import EXIT_CONFIG, config_option, handle_errors, main, not_found
from integrator.errors import LockBusy

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from integrator.config import Config
    from integrator.portal import CredentialsRefused

__all__ = ["resend_activation_command", "reset_password_command"]

_ACTOR_HELP = "Who acts, e.g. the sales rep (recorded in the account's history); default: the OS user."
_DELIVER_HELP = "Deliver pending mail right away (default), or only queue it for the next delivery."


def _actor(actor: str | None) -> str:
    return actor or f"ops:{getpass.getuser()}"


def _deliver(engine: Engine, config: Config) -> None:
    from integrator.cli.mail import print_report
    from integrator.mail.delivery import deliver_pending

    try:
        print_report(deliver_pending(engine, config))
    except LockBusy:
        click.echo("another mail delivery is running; it (or the next one) sends this mail")


def _refused(exc: CredentialsRefused) -> NoReturn:
    click.echo(f"refused: {exc}", err=True)
    sys.exit(EXIT_CONFIG)


@main.command("reset-password")
@click.argument("login")
@click.option("--actor", default=None, help=_ACTOR_HELP)
@click.option("--deliver/--no-deliver", default=True, help=_DELIVER_HELP)
@config_option
@handle_errors
def reset_password_command(config: Config, login: str, actor: str | None, deliver: bool) -> None:
    """Send LOGIN a password reset mail (link or temporary password, per [accounts] activation)."""
    from integrator.portal import AccountNotFound, CredentialsRefused, reset_password
    from integrator.store.db import open_store

    engine = open_store(config.store.url)
    try:
        mail_id = reset_password(engine, login, _actor(actor))
    except AccountNotFound:
        not_found("live account", "login", login)
    except CredentialsRefused as exc:
        _refused(exc)
    click.echo(f"{login}: password reset queued (mail #{mail_id})")
    if deliver:
        _deliver(engine, config)


@main.command("resend-activation")
@click.argument("login", required=False)
@click.option("--all-pending", is_flag=True, help="Every live, pending, unblocked account (bulk invite).")
@click.option("--actor", default=None, help=_ACTOR_HELP)
@click.option("--deliver/--no-deliver", default=True, help=_DELIVER_HELP)
@config_option
@handle_errors
def resend_activation_command(
    config: Config, login: str | None, all_pending: bool, actor: str | None, deliver: bool
) -> None:
    """Send the activation mail again to LOGIN (or --all-pending); only the newest one will work."""
    if bool(login) == all_pending:
        raise click.UsageError("give either LOGIN or --all-pending")
    from integrator.portal import AccountNotFound, CredentialsRefused, resend_activation, resend_all_pending
    from integrator.store.db import open_store

    engine = open_store(config.store.url)
    if all_pending:
        count = resend_all_pending(engine, _actor(actor))
        click.echo(f"activation queued for {count} pending account(s)")
    else:
        try:
            mail_id = resend_activation(engine, login or "", _actor(actor))
        except AccountNotFound:
            not_found("live account", "login", login or "")
        except CredentialsRefused as exc:
            _refused(exc)
        click.echo(f"{login}: activation queued (mail #{mail_id})")
    if deliver:
        _deliver(engine, config)
