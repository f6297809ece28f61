"""`integrator presets list` / `presets show NAME`: the shipped ERP queries, for a consultant to read, try in a
query tool against the ERP's SQL Server, or adapt into a `query` of their own. Needs no config file."""

from __future__ import annotations

import tomllib

import click

from integrator.cli.app import handle_errors, main
from integrator.cli.output import print_json, print_table
from integrator.errors import ConfigError

__all__ = ["presets_group"]


@main.group("presets")
def presets_group() -> None:
    """The shipped ERP presets (`[source] preset`): what there is, and their SQL."""


@presets_group.command("list")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: name, erp, each option's default and any listed values."
)
@handle_errors
def list_command(as_json: bool) -> None:
    """One line per preset: its name (the value of `preset`) and the ERP it reads."""
    from integrator.connectors.preset_files import available_presets, read_preset

    presets = [read_preset(name) for name in available_presets()]
    if as_json:
        print_json(
            [
                {
                    "name": p.name,
                    "erp": p.erp,
                    "options": {o.name: o.default for o in p.options.values()},
                    "option_values": {o.name: list(o.choices) for o in p.options.values() if o.choices},
                }
                for p in presets
            ]
        )
        return
    print_table(None, ["preset", "erp"], [(p.name, p.erp) for p in presets])


@presets_group.command("show")
@click.argument("name")
@click.option("--contacts", is_flag=True, help="Show the contacts query instead of the customers query.")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A preset option, as in [source.preset_options] (a TOML value; bare text is a string). Repeatable.",
)
@handle_errors
def show_command(name: str, contacts: bool, options: tuple[str, ...]) -> None:
    """Print preset NAME's header (sources, what is inferred, options) and its T-SQL with the options applied,
    ready to paste into a query tool."""
    from integrator.connectors.preset_files import read_preset

    preset = read_preset(name)
    part = "contacts" if contacts else "customers"
    query = preset.render(part, _parse_options(options))
    if query is None:
        raise ConfigError(f"preset {name!r} has no contacts query")
    click.echo(f"{preset.header}\n\n{query}\n" if preset.header else f"{query}\n")


def _parse_options(options: tuple[str, ...]) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {option!r}: expected KEY=VALUE, e.g. --option tag=b2b")
        try:
            parsed[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed[key.strip()] = value.strip()
    return parsed
