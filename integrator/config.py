"""The TOML configuration: loaded, `${ENV}`-expanded, validated, resolved against its own folder.

Every section is a frozen pydantic model that forbids unknown keys, so a typo is an error that names the file,
the key and the problem instead of a setting silently ignored.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from integrator import password_policy
from integrator.errors import ConfigError

__all__ = [
    "AccountsConfig",
    "ApiConfig",
    "Config",
    "ExcludeRule",
    "LockConfig",
    "LoggingConfig",
    "MailConfig",
    "RulesConfig",
    "SafetyConfig",
    "ScheduleConfig",
    "SourceConfig",
    "StoreConfig",
    "load_config",
]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    """Where ERP customer records (and their contact persons) come from."""

    kind: Literal["odbc", "csv"]
    """Connector: `odbc` (pyodbc) or `csv` (a file export)."""
    connection_string: str | None = None
    """odbc: a full ODBC connection string."""
    dsn: str | None = None
    """odbc: a DSN from odbc.ini, instead of `connection_string`."""
    query: str | None = None
    """odbc: the consultant's query returning the record columns."""
    preset: str | None = None
    """odbc: a shipped query (`connectors/presets/<name>.sql`) instead of `query`."""
    preset_options: dict[str, Any] = Field(default_factory=dict)
    """odbc: overrides for a preset (table names, ids that differ per install)."""
    tags_layout: Literal["column", "rows"] = "column"
    """`column`: `tags` holds every tag, delimited; `rows`: one row per (customer, tag), ordered by erp_id."""
    tag_separator: str = ","
    """The delimiter inside a `tags` column."""
    connect_timeout: Annotated[int, Field(ge=1)] = 15
    """odbc: seconds to wait for a connection (the login timeout)."""
    query_timeout: Annotated[int, Field(ge=0)] = 600
    """odbc: seconds a query may run; 0 means no limit."""
    connect_retries: Annotated[int, Field(ge=0)] = 3
    """odbc: further connection attempts after the first fails, with exponential backoff."""
    fetch_size: Annotated[int, Field(ge=1)] = 5000
    """odbc: rows per round trip for drivers that fetch in blocks (psqlODBC's `Fetch`); `fetchmany` takes at
    most 1,000 of them at a time (`integrator.connectors.odbc.READ_CHUNK`)."""
    path: Path | None = None
    """csv: the export file."""
    delimiter: str = ";"
    """csv: the field delimiter."""
    encoding: str = "utf-8"
    """csv: the file encoding, e.g. `utf-8`, `utf-8-sig`, `cp1250`."""
    columns: dict[str, str] = Field(default_factory=dict)
    """csv (and odbc): maps record columns to source column names, e.g. `{ erp_id = "Kod" }`."""
    contacts_query: str | None = None
    """odbc: a query returning one row per contact person (erp_id, contact_id, email, ...); with it, accounts
    are per contact instead of per customer."""
    contacts_path: Path | None = None
    """csv: a contacts export file, one row per contact, read with the customer file's delimiter and encoding."""
    contact_columns: dict[str, str] = Field(default_factory=dict)
    """csv and odbc: maps contact columns to source column names, like `columns`."""
    attributes: list[str] = Field(default_factory=list)
    """Extra columns of the customer query (and of the contacts query where it has them) passed through to the
    account as a JSON object, e.g. `["credit_limit", "payment_terms"]`."""

    @field_validator("attributes")
    @classmethod
    def _plain_attribute_names(cls, names: list[str]) -> list[str]:
        from integrator.records import CONTACT_OPTIONAL, CONTACT_REQUIRED, RECORD_COLUMNS

        taken = {column.casefold() for column in (*RECORD_COLUMNS, *CONTACT_REQUIRED, *CONTACT_OPTIONAL)}
        seen: set[str] = set()
        problems = []
        for name in names:
            if not name.isidentifier():
                problems.append(
                    f"{name!r} is not a plain column name (letters, digits and _, not starting with a digit)"
                )
            elif name.casefold() in taken:
                problems.append(f"{name!r} is a record or contact column; an attribute must be another column")
            elif name.casefold() in seen:
                problems.append(f"{name!r} is listed twice")
            seen.add(name.casefold())
        if problems:
            raise ValueError("; ".join(problems))
        return names

    @model_validator(mode="before")
    @classmethod
    def _preset_contacts(cls, data: Any) -> Any:
        """A preset whose `contacts` option is on brings its contacts query: it becomes `contacts_query`, so
        everything that asks whether the source has contacts gets the same answer as for a query of one's own."""
        if not (isinstance(data, dict) and data.get("kind") == "odbc" and isinstance(data.get("preset"), str)):
            return data
        from integrator.connectors.preset_files import preset_contacts_query

        query = preset_contacts_query(data["preset"], data.get("preset_options") or {})
        if query is None or data.get("contacts_query") == query:  # the latter: a validated config validated again
            return data
        if data.get("contacts_query"):
            raise ValueError("give either `contacts_query` or a preset's contacts (preset_options.contacts), not both")
        return {**data, "contacts_query": query}

    @property
    def has_contacts(self) -> bool:
        """Whether accounts are per contact person (a contacts source is configured) rather than per customer."""
        return bool(self.contacts_query or self.contacts_path)

    @model_validator(mode="after")
    def _kind_specific(self) -> SourceConfig:
        if self.kind == "odbc":
            if not (self.connection_string or self.dsn):
                raise ValueError("odbc needs `connection_string` or `dsn`")
            if self.connection_string and self.dsn:
                raise ValueError("give either `connection_string` or `dsn`, not both")
            if bool(self.query) == bool(self.preset):
                raise ValueError("odbc needs exactly one of `query` or `preset`")
        if self.kind == "csv" and self.path is None:
            raise ValueError("csv needs `path`")
        if self.contacts_query is not None and self.kind != "odbc":
            raise ValueError("`contacts_query` is for kind = 'odbc'; a csv source reads contacts from `contacts_path`")
        if self.contacts_path is not None and self.kind != "csv":
            raise ValueError("`contacts_path` is for kind = 'csv'; an odbc source reads contacts with `contacts_query`")
        if self.contact_columns and self.contacts_query is None and self.contacts_path is None:
            raise ValueError("`contact_columns` is set but no contacts source is (`contacts_query` or `contacts_path`)")
        if len(self.delimiter) != 1:
            raise ValueError("`delimiter` must be one character")
        if not self.tag_separator:
            raise ValueError("`tag_separator` must not be empty")
        return self


class ExcludeRule(_Section):
    """A consultant's rule: exclude records whose field equals / is in / matches a value."""

    name: str
    """Short name, shown in reports (`rule:<name>`)."""
    field: str
    """A record column, e.g. `price_level` or `symbol`."""
    equals: str | None = None
    """Exclude when the field equals this (case-insensitive, trimmed)."""
    in_: list[str] | None = Field(default=None, alias="in")
    """Exclude when the field is one of these (case-insensitive, trimmed)."""
    matches: str | None = None
    """Exclude when this regular expression matches the field (Python `re.search`)."""
    reason: str = ""
    """The stated reason, shown by `explain` and the run summary."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_test(self) -> ExcludeRule:
        given = [k for k in ("equals", "in_", "matches") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an exclude rule needs exactly one of `equals`, `in`, `matches`")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"`matches` is not a valid regular expression: {exc}") from exc
        from integrator.records import RECORD_COLUMNS

        if self.field not in RECORD_COLUMNS:
            raise ValueError(f"unknown field {self.field!r}; valid: {', '.join(RECORD_COLUMNS)}")
        return self


class RulesConfig(_Section):
    """Which records are eligible for a B2B account."""

    tag: str = "b2b"
    """The tag (Subiekt: cecha) that grants access; compared case- and whitespace-insensitively."""
    require_active: bool = True
    """Leave out customers marked inactive in the ERP."""
    exclude: list[ExcludeRule] = Field(default_factory=list)
    """Consultant rules, `[[rules.exclude]]` tables."""

    @field_validator("tag")
    @classmethod
    def _tag_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("`tag` must not be empty")
        return value


class StoreConfig(_Section):
    """Where accounts, runs and mail live."""

    url: str = "sqlite:///integrator.db"
    """SQLAlchemy URL; relative SQLite paths resolve against the config's folder."""
    batch_size: Annotated[int, Field(ge=1)] = 100_000
    """Accounts written per transaction when a sync applies its plan (each batch commits accounts, events and
    mails together); larger batches load faster, smaller ones hold the store's write lock for less time."""
    reconnect_attempts: Annotated[int, Field(ge=0, le=10)] = 2
    """Times a sync reads its source and stages again, on a new session, when the store's connection is lost
    before anything was applied (a failover, a restart, a session ended by the server), after 1, 2, 4 … s; 0 =
    never. Lost during the apply, the run fails at once (the batch in flight rolled back) and the next run goes on
    from what was committed."""


class AccountsConfig(_Section):
    """How accounts are created and reopened."""

    activation: Literal["link", "password"] = "link"
    """`link`: a one-time link to set a password; `password`: a temporary password."""
    activation_valid_hours: Annotated[int, Field(ge=1)] = 48
    """How long an activation link or temporary password is valid."""
    reset_valid_hours: Annotated[int, Field(ge=1)] = 24
    """How long a password-reset link (or reset temporary password) is valid."""
    activation_path: str = "/activate"
    """The portal page an activation link opens (`?token=…` is appended)."""
    reset_path: str = "/reset-password"
    """The portal page a password-reset link opens."""
    min_password_length: Annotated[int, Field(ge=password_policy.MIN_LENGTH, le=password_policy.MAX_LENGTH)] = (
        password_policy.MIN_LENGTH
    )
    """Fewest characters (Unicode code points after NFC) of a password a customer chooses: 8 (NIST 800-63B's
    floor) or more; at most 128 are accepted whatever this says (see `integrator.password_policy`)."""
    portal_url: str = "https://b2b.example.com"
    """The portal's address, used in mails."""
    readd: Literal["new_identity", "restore"] = "new_identity"
    """On re-add after removal: a brand-new identity, or reopen the newest closed one."""
    default_locale: Literal["pl", "en"] = "pl"
    """Mail language when the ERP gives none or one without templates."""
    login: Literal["email", "username"] = "email"
    """What customers log in with: their e-mail, or the `username` column (the contact's, else the customer's);
    mail goes to the e-mail either way."""


class SmtpConfig(_Section):
    """SMTP delivery."""

    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: Annotated[float, Field(gt=0)] = 30.0
    connections: Annotated[int, Field(ge=1, le=8)] = 1
    """SMTP sessions that send at once (each account's mail through one of them, in order): a relay far away
    answers each message after a round trip, so a go-live goes faster with several; no more than the relay
    allows at once from one client. At most 8: each holds a store connection, and the store's pool (15) must
    still serve the lock, the listing and a sync the daemon runs meanwhile."""


class FileMailConfig(_Section):
    """File delivery: one .eml per mail."""

    directory: Path = Path("mail")


class MailConfig(_Section):
    """Mail templates and delivery."""

    backend: Literal["smtp", "file", "console"] = "file"
    """`smtp`, `file` (one .eml per mail) or `console` (printed)."""
    deliver_after_sync: bool = True
    """Deliver queued mail at the end of each sync."""
    sender: str = "B2B <no-reply@b2b.example.com>"
    """The From address."""
    reply_to: str | None = None
    """An optional Reply-To address."""
    templates_dir: Path | None = None
    """A folder whose templates override the shipped ones, file by file."""
    max_attempts: Annotated[int, Field(ge=1)] = 5
    """Failed deliveries after which a mail is marked failed."""
    send_removal_notice: bool = False
    """Send the optional "account removed" mail."""
    timezone: str = "Europe/Warsaw"
    """The time zone in which mails state when a link or temporary password expires."""
    max_per_minute: Annotated[int, Field(ge=0)] = 0
    """Sending cap: at most this many mails in any 60 seconds (a sliding window), counted in the store across
    processes and runs; 0 = no cap."""
    max_per_day: Annotated[int, Field(ge=0)] = 0
    """Sending cap: at most this many mails in any 24 hours (a sliding window); 0 = no cap."""

    @field_validator("max_per_minute", "max_per_day", mode="before")
    @classmethod
    def _count_not_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):  # `true` would otherwise be taken for a cap of 1
            raise ValueError("must be a whole number of mails (0 = no cap), not true/false")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Warsaw', 'UTC')") from None
        return value

    file: FileMailConfig = Field(default_factory=FileMailConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)


def parse_interval(text: str) -> int | None:
    """Seconds in "90s" / "15m" / "1h" / "1d", or None when `text` is not an interval."""
    match = _INTERVAL.match(text)
    if not match:
        return None
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


class ScheduleConfig(_Section):
    """When `integrator daemon` syncs and delivers mail."""

    sync: str = "15m"
    """An interval ("90s", "15m", "1h") or a cron line ("*/15 * * * *")."""
    mail: str = "1m"
    """Mail delivery: an interval or a cron line."""

    @field_validator("sync", "mail")
    @classmethod
    def _interval_or_cron(cls, value: str) -> str:
        seconds = parse_interval(value)
        if seconds is not None:
            if seconds <= 0:
                raise ValueError("the interval must be positive")
            return value
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"neither an interval like '15m' nor a cron line: {exc}") from exc
        return value


class SafetyConfig(_Section):
    """The deletion guard."""

    max_removals: Annotated[int, Field(ge=0)] = 500
    """Refuse a run that would remove more accounts than this."""
    max_removal_percent: Annotated[float, Field(ge=0, le=100)] = 20
    """... or a larger share (percent) of the live accounts than this."""
    min_live_for_percent: Annotated[int, Field(ge=0)] = 20
    """The share is checked only once this many accounts are live."""


class LockConfig(_Section):
    """One sync at a time per store."""

    wait_seconds: Annotated[float, Field(ge=0)] = 0
    """How long a second sync waits for the running one before giving up."""
    lease_seconds: Annotated[int, Field(ge=10)] = 300
    """A lock not renewed for this long is taken as left by a killed process."""


class LoggingConfig(_Section):
    """Log output."""

    format: Literal["auto", "json", "console"] = "auto"
    """`auto`: JSON lines unless stderr is a terminal."""
    level: Literal["debug", "info", "warning", "error"] = "info"


class ApiConfig(_Section):
    """The portal API (`integrator serve`)."""

    listen: str = "127.0.0.1:8080"
    """host:port the API listens on (`[::1]:8080` for IPv6); TLS is left to a reverse proxy in front of it."""
    token_lifetime: Annotated[int, Field(ge=60, le=86400)] = 900
    """Seconds a bearer token from `POST /oauth/token` stays valid."""
    max_hash_concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    """Password verifications (argon2, ~64 MiB each) run at once at most; further requests wait their turn."""
    login_free_attempts: Annotated[int, Field(ge=1, le=1000)] = 5
    """Failed logins of one login before the delays start (1 s, then doubling, at most 5 minutes)."""
    address_free_attempts: Annotated[int, Field(ge=1, le=100000)] = 20
    """Failed logins from one customer address (see `client_ip_header`) before its delays start."""
    impersonation_path: str = "/impersonate"
    """Path on `[accounts] portal_url` of the portal's page that redeems an impersonation ticket (`?ticket=`)."""
    client_ip_header: str = "X-Customer-IP"
    """The header in which the portal passes its customer's IP address, for throttling failed logins per address."""
    client_ip_trusted: list[str] = Field(default_factory=list)
    """Names of the API clients (`integrator api-client add NAME`) whose `client_ip_header` is believed; from any
    other client the header is ignored."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port, e.g. 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        """The host part of `listen`, without IPv6 brackets."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part of `listen`."""
        return int(self.listen.rpartition(":")[2])


class Config(_Section):
    """The whole configuration file."""

    source: SourceConfig
    rules: RulesConfig = Field(default_factory=RulesConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    accounts: AccountsConfig = Field(default_factory=AccountsConfig)
    mail: MailConfig = Field(default_factory=MailConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    lock: LockConfig = Field(default_factory=LockConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    path: Path | None = Field(default=None, exclude=True)
    """The file this was loaded from (not a key)."""


def _expand_env(value: Any, where: str, missing: list[str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                missing.append(f"{where}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}" if where else k, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    return value


def _resolve(base: Path, path: Path | None) -> Path | None:
    if path is None or path.is_absolute():
        return path
    return (base / path).resolve()


def _resolve_sqlite_url(base: Path, url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url[len(prefix) :] not in ("", ":memory:"):
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before") or str(item).startswith("function-"):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def config_from_dict(data: dict[str, Any], path: Path | None = None) -> Config:
    """Validate an already-parsed config; `path` anchors relative paths and error messages."""
    where = str(path) if path else "<config>"
    missing: list[str] = []
    data = _expand_env(data, "", missing)
    if missing:
        raise ConfigError(f"{where}: configuration refers to unset environment variables", missing)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = _format_location(tuple(error["loc"])) or "(top level)"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{where}: [{key}] {message}")
        raise ConfigError(f"{where}: invalid configuration", problems) from None
    base = path.parent.resolve() if path else Path.cwd()
    source = config.source.model_copy(
        update={
            "path": _resolve(base, config.source.path),
            "contacts_path": _resolve(base, config.source.contacts_path),
        }
    )
    store = config.store.model_copy(update={"url": _resolve_sqlite_url(base, config.store.url)})
    file_cfg = config.mail.file.model_copy(update={"directory": _resolve(base, config.mail.file.directory)})
    mail = config.mail.model_copy(update={"file": file_cfg, "templates_dir": _resolve(base, config.mail.templates_dir)})
    return config.model_copy(update={"source": source, "store": store, "mail": mail, "path": path})


def load_config(path: str | Path) -> Config:
    """Read, expand and validate a config file; raise `ConfigError` naming the file, key and problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (pass --config FILE)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    return config_from_dict(data, path)
