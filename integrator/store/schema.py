"""The store's tables (SQLAlchemy Core). The portal reads `accounts` and `account_secrets`: see README.

Every timestamp is naive UTC (the same on SQLite, PostgreSQL and MariaDB).

Uniqueness that must hold across SQLite, PostgreSQL and MariaDB is kept with "live" shadow columns:
`live_login` and `live_key` equal `login` and the identity key (the `erp_id` of a per-customer account; the
`erp_id` and `contact_id` joined by U+001F for a contact's) while the account is live and are NULL once it is
removed, and each has a unique index (NULLs never collide). So at most one live account per login and per
customer or contact, enforced by the database itself, not by the sync's good behaviour. `live_erp_id` finds a
customer's live accounts.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

__all__ = [
    "ACCOUNT_STATUSES",
    "account_events",
    "account_secrets",
    "accounts",
    "api_client_secrets",
    "api_clients",
    "api_login_throttle",
    "api_tokens",
    "impersonations",
    "locks",
    "mail_send_gate",
    "mail_sends",
    "metadata",
    "outbox",
    "quarantine",
    "run_actions",
    "runs",
    "SEED_ROWS",
]

metadata = MetaData()

Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
"""Microsecond timestamps everywhere (MariaDB's DATETIME would otherwise drop fractions of a second)."""


def exact(length: int, *, mariadb: bool = False) -> TypeEngine[str]:
    """A key compared byte for byte: on PostgreSQL in the "C" collation, and with `mariadb` on MariaDB too.

    PostgreSQL compares text in any other collation (libc's `en_US.UTF-8`, even `C.UTF-8`) through `strcoll`
    and sorts it for an index without abbreviated keys. Ids, ERP ids, logins and codes are only ever compared for
    equality or grouped, never sorted for people, and equality is the same in every deterministic collation: "C"
    changes no answer and makes every lookup, join and index build on them cheaper (a first sync of 620,790
    accounts: 1.4-3 s less of the server's CPU, its apply 12.8-14.1 s -> 11.6-12.3 s). MariaDB's default collation
    would take `café` for `cafe` and `A` for `a`, so logins and identity keys, whose unique indexes must tell
    such values apart, are `utf8mb4_bin` there."""
    kind: TypeEngine[str] = String(length).with_variant(postgresql.VARCHAR(length, collation="C"), "postgresql")
    if mariadb:
        kind = kind.with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")
    return kind


Login = exact(320, mariadb=True)
"""A login compared exactly. Logins are normalised before they are stored, so an exact comparison is the right
one everywhere."""
IdentityKey = exact(200, mariadb=True)
"""An identity key compared exactly, like a login: ERP ids `a1` and `A1` are two customers."""
AccountId = exact(36)
"""An account's id, a UUID (and the columns that name one)."""

ACCOUNT_STATUSES = ("pending_activation", "active", "removed")

accounts = Table(
    "accounts",
    metadata,
    Column("id", AccountId, primary_key=True, comment="identity id, a random UUID; never reused"),
    Column("erp_id", exact(64), nullable=False, index=True),
    Column(
        "contact_id",
        String(64),
        comment="the ERP contact person this account is for; NULL for a per-customer account (no contacts source)",
    ),
    Column("login", Login, nullable=False, comment="the normalised e-mail, or the username ([accounts] login)"),
    Column("email", String(320), comment="where mail goes when the login is a username; NULL: the login is the e-mail"),
    Column("live_login", Login, comment="= login while live, NULL once removed (unique)"),
    Column("live_erp_id", exact(64), comment="= erp_id while live, NULL once removed"),
    Column(
        "live_key",
        IdentityKey,
        comment="while live: the identity key (erp_id; erp_id, U+001F, contact_id for a contact), NULL once removed "
        "(unique)",
    ),
    Column("status", String(24), nullable=False, comment="pending_activation | active | removed"),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("blocked_reason", Text),
    Column("name", Text, comment="the customer's (company's) name"),
    Column("contact_name", Text, comment="the contact person's name (contact accounts)"),
    Column("symbol", String(128)),
    Column("tax_id", String(64)),
    Column("phone", String(128)),
    Column("price_level", String(128)),
    Column("discount", Numeric(9, 4)),
    Column("sales_rep", String(256)),
    Column("sales_rep_email", String(320)),
    Column("locale", String(16)),
    Column("attributes", Text, comment="JSON object of the [source] attributes columns, NULL when none"),
    Column(
        "fingerprint",
        String(16),
        nullable=False,
        comment="digest of the ERP row last applied (of its synced fields, for multi-row sources)",
    ),
    Column("password_hash", Text, comment="argon2id hash of the password the customer chose"),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("activated_at", Timestamp),
    Column("last_login_at", Timestamp),
    Column("removed_at", Timestamp),
    Column("removed_reason", Text),
    Column("created_run_id", Integer),
    Index("ux_accounts_live_login", "live_login", unique=True),
    Index("ux_accounts_live_key", "live_key", unique=True),
    Index("ix_accounts_live_erp_id", "live_erp_id"),
)

account_secrets = Table(
    "account_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", AccountId, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("kind", String(24), nullable=False, comment="activation_link | temporary_password | reset_link"),
    Column("secret_hash", Text, nullable=False, comment="hash only; the plaintext exists only in the mail"),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
    Column("revoked_at", Timestamp, comment="set when a newer secret of the kind is minted"),
)

account_events = Table(
    "account_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", AccountId, nullable=False, index=True),
    Column("erp_id", String(64)),
    Column("run_id", Integer, index=True),
    Column("actor", String(256), nullable=False, comment="'sync' or the ops/sales-rep user who acted"),
    Column("kind", String(32), nullable=False, comment="created | updated | removed | readded | restored | ..."),
    Column("changes", Text, comment="JSON: {field: [old, new]} for updates, reasons for removals"),
    Column("at", Timestamp, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column(
        "status",
        String(24),
        nullable=False,
        comment="running | ok | quarantined | refused | failed | interrupted",
    ),
    Column("trigger", String(32), nullable=False, comment="cli | daemon | only"),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("records", Integer, nullable=False, default=0),
    Column("created", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("removed", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("mails_queued", Integer, nullable=False, default=0),
    Column("summary", Text, comment="JSON: rejections by reason, guard details"),
    Column("error", Text),
)

run_actions = Table(
    "run_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("erp_id", String(64), index=True),
    Column("contact_id", String(64), comment="the contact the action concerns (contacts sources)"),
    Column("account_id", String(36)),
    Column(
        "action",
        String(24),
        nullable=False,
        comment="reject | quarantine | refused (account changes are events)",
    ),
    Column("reason", Text),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", AccountId, nullable=False),
    Column(
        "kind",
        exact(32),
        nullable=False,
        comment="activation | password_reset | login_changed | account_removed",
    ),
    Column("recipient", String(320), nullable=False),
    Column("locale", String(16)),
    Column("status", exact(16), nullable=False, comment="pending | sent | failed | cancelled"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("next_attempt_at", Timestamp),
    Column("sent_at", Timestamp),
    Column("run_id", Integer),
    Column("actor", String(256)),
    Column("context", Text, comment="JSON without secrets, e.g. the old login for login_changed"),
    Index("ix_outbox_status", "status", "id"),
    # Leading with the account, so "is a newer mail of this kind pending?" never scans the pending queue.
    Index("ix_outbox_account", "account_id", "kind", "status"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("erp_id", String(200), primary_key=True, comment="the identity key (see accounts.live_key)"),
    Column("error", Text, nullable=False),
    Column("first_run_id", Integer),
    Column("last_run_id", Integer),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_seen_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("acquired_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

# -- the portal API's callers (`integrator api-client`, `integrator serve`) -----------------------------------
api_clients = Table(
    "api_clients",
    metadata,
    Column("id", String(64), primary_key=True, comment="the client id a caller sends (HTTP Basic user name)"),
    Column("name", String(128), nullable=False, comment="the operator's name for the client, unique"),
    Column("scopes", String(256), nullable=False, comment="space-separated: portal | staff | sales_rep"),
    Column("created_at", Timestamp, nullable=False),
    Index("ux_api_clients_name", "name", unique=True),
)

api_client_secrets = Table(
    "api_client_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(64), nullable=False, index=True),
    Column("secret_hash", Text, nullable=False, comment="argon2id hash; the secret itself is printed once"),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, comment="NULL: valid until a rotation gives it an end"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True, comment="SHA-256 (hex) of the bearer token; never the token"),
    Column("client_id", String(64), nullable=False, index=True),
    Column("scopes", String(256), nullable=False, comment="space-separated scopes the token carries"),
    Column("issued_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False, index=True),
)

api_login_throttle = Table(
    "api_login_throttle",
    metadata,
    Column(
        "key",
        String(400).with_variant(mysql.VARCHAR(400, collation="utf8mb4_bin"), "mysql", "mariadb"),
        primary_key=True,
        comment="'login:' + a normalised login, or 'ip:' + a customer's address (compared exactly, like logins)",
    ),
    Column("failures", Integer, nullable=False, comment="attempts counted since the last success or quiet spell"),
    Column("next_allowed_at", Timestamp, nullable=False, comment="no attempt for this key is checked before then"),
    Column("last_attempt_at", Timestamp, nullable=False),
)

impersonations = Table(
    "impersonations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", AccountId, nullable=False, index=True),
    Column("ticket_hash", String(64), nullable=False, comment="SHA-256 of the one-time ticket's random part"),
    Column(
        "actor", String(256), nullable=False, comment="the staff member (and API client) logging in as the customer"
    ),
    Column("reason", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, comment="set when the portal redeemed the ticket (once)"),
)

# -- sending caps ([mail] max_per_minute, max_per_day) ---------------------------------------------------------
mail_sends = Table(
    "mail_sends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mail_id", Integer, nullable=False, index=True, comment="the outbox row this send slot was taken for"),
    Column("sent_at", Timestamp, nullable=False, index=True, comment="when the slot was taken (naive UTC)"),
)
"""One row per message handed to the relay in the last 24 hours (older rows are pruned): the sending caps count
these rows in their window, whichever process sent."""

mail_send_gate = Table(
    "mail_send_gate",
    metadata,
    Column("name", String(32), primary_key=True, comment="'send': the one row"),
    Column("claims", Integer, nullable=False, default=0, comment="times a delivery took its turn here"),
)
"""The one row every delivering process updates first when it takes send slots under a cap, so they take turns (a
row lock on PostgreSQL and MariaDB, the write lock on SQLite) and together stay under the caps."""

SEED_ROWS: dict[Table, list[dict[str, object]]] = {mail_send_gate: [{"name": "send", "claims": 0}]}
"""Rows a store holds from the start (migration 0007 inserts the same): a new store created from these tables
rather than by the migrations gets them too (`integrator.store.db`)."""
