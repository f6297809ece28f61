"""`integrator demo DIR`: write a sample ERP and a config that syncs it, then say what to run next."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from integrator.cli.app import main

__all__ = ["demo_command"]


@main.command("demo")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--customers",
    type=int,
    default=240,
    show_default=True,
    help="How many ERP customers to write (at least 40).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="The same seed writes the same customers.")
@click.option("--force", is_flag=True, help="Replace an existing demo, including its store and delivered mail.")
def demo_command(directory: Path, customers: int, seed: int, force: bool) -> None:
    """Write DIRECTORY/erp.db (a sample ERP in SQLite) and DIRECTORY/config.toml (syncing it over ODBC)."""
    from integrator.demo import MIN_CUSTOMERS, clear_demo_state, write_demo

    if customers < MIN_CUSTOMERS:  # checked here, not by the option's type: `--help` does not load the demo
        raise click.BadParameter(f"{customers} is below the minimum of {MIN_CUSTOMERS}", param_hint="'--customers'")
    database = directory / "erp.db"
    if database.is_file() and database.stat().st_size > 0 and not force:
        raise click.ClickException(f"{database} already exists; pass --force to replace it (and its store)")
    removed = clear_demo_state(directory) if force else []
    paths = write_demo(directory, customers=customers, seed=seed)
    if removed:
        click.echo(f"removed the earlier demo's store and mail ({len(removed)} files)")
    click.echo(f"wrote {paths.database}: {paths.customers} ERP customers, {paths.contacts} buyers (seed {seed})")
    for kind, count in paths.mix:
        click.echo(f"  {count:>5}  {kind}")
    click.echo(
        f"wrote {paths.config}: odbc source (SQLite3 driver), an account per buyer, store and mail in {paths.directory}"
    )
    config = shlex.quote(str(directory / "config.toml"))
    if paths.examples:
        click.echo("customers worth an `integrator explain ERP_ID`:")
        for erp_id, why in paths.examples:
            click.echo(f"  {erp_id}  {why}")
    click.echo("\nnext:")
    click.echo(f"  integrator sync --config {config} --dry-run   # the plan, nothing written")
    click.echo(f"  integrator sync --config {config}             # create the accounts, mail into {directory}/mail")
