"""`integrator api-client add|list|rotate|remove` (the portal API's callers) and `integrator serve` (the API).

A client's secret is printed once, when it is made; the store keeps only its hash. The store and the API
client code are imported inside each command, FastAPI and uvicorn inside `serve` only.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from integrator.cli.app import EXIT_CONFIG, config_option, group_config_option, handle_errors, main, not_found
from integrator.cli.output import print_json, print_table

if TYPE_CHECKING:
    from integrator.config import Config

__all__ = ["api_client_group", "serve_command"]

SCOPES = ("portal", "staff", "sales_rep")
"""`integrator.api.clients.SCOPES`, spelled here so that `--help` needs no store (a test holds them equal)."""


def _print_secret(client_id: str, client_secret: str, as_json: bool) -> None:
    if as_json:
        print_json({"client_id": client_id, "client_secret": client_secret})
        return
    click.echo(f"client_id: {client_id}")
    click.echo(f"client_secret: {client_secret}")
    click.echo("The secret is shown this once: store it in the portal's configuration now.", err=True)


@main.group("api-client")
@group_config_option
def api_client_group() -> None:
    """The portal API's callers: each has scopes (portal, staff, sales_rep) and a secret."""


@api_client_group.command("add")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Repeatable: " + ", ".join(SCOPES),
)
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id": ..., "client_secret": ...}.')
@config_option
@handle_errors
def add_command(config: Config, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create client NAME and print its id and secret (once: only a hash of the secret is stored)."""
    from integrator.api.clients import ClientExists, add_client
    from integrator.store.db import open_store

    try:
        new = add_client(open_store(config.store.url), name, scopes)
    except ClientExists as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    _print_secret(new.client_id, new.client_secret, as_json)


@api_client_group.command("rotate")
@click.argument("name")
@click.option(
    "--keep-old",
    default="24h",
    show_default=True,
    help="How long the client's older secret stays valid (an interval: 90s, 15m, 1h, 1d).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id": ..., "client_secret": ...}.')
@config_option
@handle_errors
def rotate_command(config: Config, name: str, keep_old: str, as_json: bool) -> None:
    """Give client NAME (or id) a new secret; the older one keeps working for --keep-old."""
    from integrator.api.clients import ClientNotFound
    from integrator.api.clients import rotate_secret as rotate_client_secret
    from integrator.config import parse_interval
    from integrator.store.db import open_store

    seconds = parse_interval(keep_old)
    if seconds is None:
        raise click.BadParameter(f"{keep_old!r} is not an interval like 90s, 15m, 1h or 1d", param_hint="--keep-old")
    try:
        new = rotate_client_secret(open_store(config.store.url), name, timedelta(seconds=seconds))
    except ClientNotFound:
        not_found("API client", "name or id", name)
    _print_secret(new.client_id, new.client_secret, as_json)


@api_client_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@handle_errors
def list_command(config: Config, as_json: bool) -> None:
    """Every client with its scopes (never a secret)."""
    from integrator.api.clients import list_clients
    from integrator.store.db import open_store

    clients = list_clients(open_store(config.store.url))
    if as_json:
        print_json(clients)
        return
    print_table(
        "API clients",
        ("name", "client_id", "scopes", "valid secrets", "created"),
        ((c["name"], c["client_id"], " ".join(c["scopes"]), str(c["valid_secrets"]), c["created_at"]) for c in clients),
    )


@api_client_group.command("remove")
@click.argument("name")
@config_option
@handle_errors
def remove_command(config: Config, name: str) -> None:
    """Delete client NAME (or id): its secrets and tokens stop working at once."""
    from integrator.api.clients import ClientNotFound, remove_client
    from integrator.store.db import open_store

    try:
        client_id = remove_client(open_store(config.store.url), name)
    except ClientNotFound:
        not_found("API client", "name or id", name)
    click.echo(f"{name}: removed (client {client_id})")


@main.command("serve")
@config_option
@handle_errors
def serve_command(config: Config) -> None:
    """Run the portal API (HTTP; TLS by a reverse proxy) where [api] listen says, until stopped."""
    from integrator.api.server import serve

    serve(config)
