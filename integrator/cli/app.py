"""The root command group, the shared `--config` option (a group's reaches its subcommands) and the mapping of
errors to exit codes.

Exit codes (SPEC): 0 success; 1 unexpected error; 2 bad config or usage (an unknown login or id too); 3 finished
with quarantined records; 4 refused by a safety guard.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from integrator.config import Config, load_config
from integrator.errors import ConfigError, GuardRefusal, IntegratorError, LockBusy

__all__ = [
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_GUARD",
    "EXIT_OK",
    "EXIT_QUARANTINED",
    "config_option",
    "config_path_option",
    "exit_for",
    "group_config_option",
    "handle_errors",
    "main",
    "not_found",
    "not_found_line",
    "open_config",
]

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_QUARANTINED, EXIT_GUARD = 0, 1, 2, 3, 4

F = TypeVar("F", bound=Callable[..., Any])


DEFAULT_CONFIG = Path("config.toml")
_CONFIG_KEY = "integrator.config_path"


def _config_path(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    """The innermost `--config` given wins: a command's own, else its group's (and so on up), else the default.

    `ctx.meta` is shared by a context and every context nested in it, so a group's value reaches its subcommands.
    """
    if value is None:
        return ctx.meta.get(_CONFIG_KEY, DEFAULT_CONFIG)
    ctx.meta[_CONFIG_KEY] = value
    return value


config_path_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_config_path,
    help="The TOML config file (default: the enclosing group's --config, else ./config.toml).",
)
"""`--config FILE` as a path, for commands that load the file only when they need it."""

group_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_config_path,
    expose_value=False,
    help="The TOML config file for every subcommand (a subcommand's own --config wins).",
)
"""`--config FILE` on a group: remembered for its subcommands, which load it."""


def config_option(func: F) -> F:
    """Adds `--config FILE` (default: the group's --config, else ./config.toml); passes the loaded `Config`."""

    @config_path_option
    @functools.wraps(func)
    def wrapper(*args: Any, config_path: Path, **kwargs: Any) -> Any:
        return func(*args, config=open_config(config_path), **kwargs)

    return wrapper  # type: ignore[return-value]


def open_config(path: Path) -> Config:
    """Load and validate the config file, and set up logging as it says."""
    config = load_config(path)
    from integrator.logs import configure_logging

    configure_logging(config.logging)
    return config


def handle_errors(func: F) -> F:
    """Turns the product's errors into a clear message on stderr and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IntegratorError as exc:
            exit_for(exc)

    return wrapper  # type: ignore[return-value]


def exit_for(exc: IntegratorError) -> NoReturn:
    """Print the error on one line and exit with its code: 2 config, 4 refused by a guard or the lock, else 1."""
    if isinstance(exc, ConfigError):
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if isinstance(exc, GuardRefusal | LockBusy):
        click.echo(f"refused: {exc}", err=True)
        sys.exit(EXIT_GUARD)
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_ERROR)


def not_found_line(thing: str, key_kind: str, key: str | int) -> str:
    """The one wording of "not found", e.g. `error: no live account with login 'x'` or `error: no run with id 7`."""
    return f"error: no {thing} with {key_kind} {key!r}"


def not_found(thing: str, key_kind: str, key: str | int) -> NoReturn:
    """A command looked up a login or id that does not exist: say so on stderr and exit 2 (bad usage)."""
    click.echo(not_found_line(thing, key_kind, key), err=True)
    sys.exit(EXIT_CONFIG)


class _Group(click.Group):
    """Maps usage errors to exit 2 (click's default too) and unexpected ones to exit 1 with one line."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D401
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_CONFIG)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except SystemExit:
            raise
        except IntegratorError as exc:  # e.g. a ConfigError while `config_option` loads the file
            exit_for(exc)
        except Exception as exc:  # noqa: BLE001 - last resort: one line, exit 1
            click.echo(f"unexpected error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="integrator")
@group_config_option
def main() -> None:
    """Keep B2B portal accounts in step with the ERP's customers."""


def _register() -> None:
    # Command modules register themselves on the group when imported; each is one command or group.
    import importlib

    for name in (
        "sync",
        "accounts",
        "check",
        "block",
        "history",
        "access",
        "daemon",
        "mail",
        "credentials",
        "demo",
        "api",
        "presets",
    ):
        importlib.import_module(f"integrator.cli.{name}")


_register()
