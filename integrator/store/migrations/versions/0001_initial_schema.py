"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 00:50:39.375660
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "account_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("erp_id", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column(
            "actor",
            sa.String(length=256),
            nullable=False,
            comment="'sync' or the ops/sales-rep user who acted",
        ),
        sa.Column(
            "kind",
            sa.String(length=32),
            nullable=False,
            comment="created | updated | removed | readded | restored | ...",
        ),
        sa.Column(
            "changes",
            sa.Text(),
            nullable=True,
            comment="JSON: {field: [old, new]} for updates, reasons for removals",
        ),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_events_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_events_run_id"), ["run_id"], unique=False)

    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=36), nullable=False, comment="identity id, a random UUID; never reused"),
        sa.Column("erp_id", sa.String(length=64), nullable=False),
        sa.Column("login", sa.String(length=320), nullable=False, comment="the e-mail, trimmed and lower-cased"),
        sa.Column(
            "live_login",
            sa.String(length=320),
            nullable=True,
            comment="= login while live, NULL once removed (unique)",
        ),
        sa.Column(
            "live_erp_id",
            sa.String(length=64),
            nullable=True,
            comment="= erp_id while live, NULL once removed (unique)",
        ),
        sa.Column("status", sa.String(length=24), nullable=False, comment="pending_activation | active | removed"),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("symbol", sa.String(length=128), nullable=True),
        sa.Column("tax_id", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=128), nullable=True),
        sa.Column("price_level", sa.String(length=128), nullable=True),
        sa.Column("discount", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("sales_rep", sa.String(length=256), nullable=True),
        sa.Column("sales_rep_email", sa.String(length=320), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column(
            "fingerprint",
            sa.String(length=16),
            nullable=False,
            comment="digest of the ERP row last applied (of its synced fields, for multi-row sources)",
        ),
        sa.Column(
            "password_hash",
            sa.Text(),
            nullable=True,
            comment="argon2id hash of the password the customer chose",
        ),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("activated_at", TIMESTAMP, nullable=True),
        sa.Column("last_login_at", TIMESTAMP, nullable=True),
        sa.Column("removed_at", TIMESTAMP, nullable=True),
        sa.Column("removed_reason", sa.Text(), nullable=True),
        sa.Column("created_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_erp_id"), ["erp_id"], unique=False)
        batch_op.create_index("ux_accounts_live_erp_id", ["live_erp_id"], unique=True)
        batch_op.create_index("ux_accounts_live_login", ["live_login"], unique=True)

    op.create_table(
        "locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column(
            "kind",
            sa.String(length=32),
            nullable=False,
            comment="activation | password_reset | login_changed | account_removed",
        ),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending | sent | failed | cancelled"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=256), nullable=True),
        sa.Column(
            "context",
            sa.Text(),
            nullable=True,
            comment="JSON without secrets, e.g. the old login for login_changed",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_account", ["account_id", "kind", "status"], unique=False)
        batch_op.create_index("ix_outbox_status", ["status", "id"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("erp_id", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("first_run_id", sa.Integer(), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("erp_id"),
    )
    op.create_table(
        "run_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("erp_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column(
            "action",
            sa.String(length=24),
            nullable=False,
            comment="reject | quarantine | refused (account changes are events)",
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("run_actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_actions_erp_id"), ["erp_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_actions_run_id"), ["run_id"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column(
            "status",
            sa.String(length=24),
            nullable=False,
            comment="running | ok | quarantined | refused | failed | interrupted",
        ),
        sa.Column("trigger", sa.String(length=32), nullable=False, comment="cli | daemon | only"),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("mails_queued", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True, comment="JSON: rejections by reason, guard details"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "account_secrets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column(
            "kind",
            sa.String(length=24),
            nullable=False,
            comment="activation_link | temporary_password | reset_link",
        ),
        sa.Column(
            "secret_hash",
            sa.Text(),
            nullable=False,
            comment="hash only; the plaintext exists only in the mail",
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.Column(
            "revoked_at",
            TIMESTAMP,
            nullable=True,
            comment="set when a newer secret of the kind is minted",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_secrets_account_id"), ["account_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("account_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_secrets_account_id"))

    op.drop_table("account_secrets")
    op.drop_table("runs")
    with op.batch_alter_table("run_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_actions_run_id"))
        batch_op.drop_index(batch_op.f("ix_run_actions_erp_id"))

    op.drop_table("run_actions")
    op.drop_table("quarantine")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status")
        batch_op.drop_index("ix_outbox_account")

    op.drop_table("outbox")
    op.drop_table("locks")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ux_accounts_live_login")
        batch_op.drop_index("ux_accounts_live_erp_id")
        batch_op.drop_index(batch_op.f("ix_accounts_erp_id"))

    op.drop_table("accounts")
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_events_run_id"))
        batch_op.drop_index(batch_op.f("ix_account_events_account_id"))

    op.drop_table("account_events")
