"""The root command group, the shared `--config` option (a group's reaches its subcommands) and the mapping of
errors to exit codes.

The group is lazy: a command's module is imported only when that command is asked for (run, or listed by
`--help`), and every command module imports its heavy libraries (the store, the ODBC reader, pydantic's config,
the mail stack) inside the command function, so `--help`, `--version` and usage errors start at once
(tests/test_fast_start.py guards the import list).

Exit codes (SPEC): 0 success; 1 unexpected error; 2 bad config or usage (an unknown login or id too); 3 finished
with quarantined records; 4 refused by a safety guard.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from integrator.errors import ConfigError, GuardRefusal, IntegratorError, LockBusy

if TYPE_CHECKING:
    from integrator.config import Config

__all__ = [
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_GUARD",
    "EXIT_OK",
    "EXIT_QUARANTINED",
    "COMMANDS",
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
    """Load and validate the config file, and set up logging as it says (pydantic and structlog load here)."""
    from integrator.config import load_config
    from integrator.logs import configure_logging

    config = load_config(path)

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


COMMANDS: dict[str, tuple[str, str]] = {
    "accounts": ("accounts", "List and inspect B2B accounts."),
    "api-client": (
        "api",
        "The portal API's callers: each has scopes (portal, staff, sales_rep) and a secret.",
    ),
    "block": (
        "block",
        "Block LOGIN: it cannot log in until `unblock`; syncs keep its data current but never unblock it.",
    ),
    "check": (
        "check",
        "Validate the config, reach the store and the source, show the first records and their verdicts.",
    ),
    "daemon": ("daemon", "Run syncs ([schedule] sync) and mail delivery ([schedule] mail) until SIGTERM/SIGINT."),
    "demo": (
        "demo",
        "Write DIRECTORY/erp.db (a sample ERP in SQLite) and DIRECTORY/config.toml (syncing it over ODBC).",
    ),
    "explain": (
        "access",
        "Every rule's verdict for ERP_ID now (with contacts: the customer's and each contact's), and the "
        "history of its accounts.",
    ),
    "history": (
        "history",
        "Past runs, newest first, with their counts (`history show RUN_ID`: one run's actions).",
    ),
    "mail": ("mail", "Deliver, list and retry queued mail."),
    "presets": ("presets", "The shipped ERP presets (`[source] preset`): what there is, and their SQL."),
    "report": (
        "access",
        "Access status of every ERP customer: eligible or why not, account status, activated, last login.",
    ),
    "resend-activation": (
        "credentials",
        "Send the activation mail again to LOGIN (or --all-pending); only the newest one will work.",
    ),
    "reset-password": (
        "credentials",
        "Send LOGIN a password reset mail (link or temporary password, per [accounts] activation).",
    ),
    "serve": ("api", "Run the portal API (HTTP; TLS by a reverse proxy) where [api] listen says, until stopped."),
    "sync": ("sync", "Sync now: read the ERP, apply creates, updates and removals, queue (and deliver) mail."),
    "unblock": ("block", "Lift the block on LOGIN."),
}
"""Each top-level command: the module of `integrator.cli` that registers it on `main` when imported, and its
summary for `integrator --help` (the first sentence of its docstring; tests/test_fast_start.py holds them equal),
so that listing the commands imports none of them."""


class _Group(click.Group):
    """Loads a command's module only when that command is run or asked for its help; maps usage errors to exit 2
    (click's default too) and unexpected ones to exit 1 with one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"integrator.cli.{COMMANDS[cmd_name][0]}")  # its decorators add it to `main`
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, from `COMMANDS` for the commands not loaded yet (so none is imported)."""
        names = [n for n in self.list_commands(ctx) if n in COMMANDS or not self.commands[n].hidden]
        limit = formatter.width - 6 - max(map(len, names))
        # A command not loaded is shortened by a stand-in carrying its summary: click's own shortening.
        shown = [self.commands.get(n) or click.Command(n, help=COMMANDS[n][1]) for n in names]
        rows = [(n, command.get_short_help_str(limit)) for n, command in zip(names, shown, strict=True)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
