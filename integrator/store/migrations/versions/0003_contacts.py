"""contacts, usernames and attributes

On MariaDB, logins and identity keys are compared exactly from here on (`utf8mb4_bin`): its default collation
took `café` for `cafe`, so two different logins could collide in the unique index or find each other's account.

Accounts gain the contact they are for (`contact_id`, `contact_name`), the address mail goes to when the login is
a username (`email`), the pass-through `attributes`, and `live_key`: the identity key a live account holds, unique,
which replaces the uniqueness of `live_erp_id` (a customer with contacts has several live accounts). Every existing
account is a per-customer account: its key is its erp_id, and nothing else of it changes (ids, secrets, events,
mail stay as they are).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

LOGIN = sa.String(320).with_variant(mysql.VARCHAR(320, collation="utf8mb4_bin"), "mysql", "mariadb")
IDENTITY_KEY = sa.String(200).with_variant(mysql.VARCHAR(200, collation="utf8mb4_bin"), "mysql", "mariadb")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


COMMENTS = {
    "contact_id": "the ERP contact person this account is for; NULL for a per-customer account (no contacts source)",
    "contact_name": "the contact person's name (contact accounts)",
    "email": "where mail goes when the login is a username; NULL: the login is the e-mail",
    "attributes": "JSON object of the [source] attributes columns, NULL when none",
    "live_key": "while live: the identity key (erp_id; erp_id, U+001F, contact_id for a contact), NULL once removed "
    "(unique)",
}


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("contact_id", sa.String(64), nullable=True, comment=COMMENTS["contact_id"]))
        batch.add_column(sa.Column("contact_name", sa.Text(), nullable=True, comment=COMMENTS["contact_name"]))
        batch.add_column(sa.Column("email", sa.String(320), nullable=True, comment=COMMENTS["email"]))
        batch.add_column(sa.Column("attributes", sa.Text(), nullable=True, comment=COMMENTS["attributes"]))
        batch.add_column(sa.Column("live_key", IDENTITY_KEY, nullable=True, comment=COMMENTS["live_key"]))
        batch.alter_column(
            "login",
            existing_type=sa.String(320),
            existing_nullable=False,
            comment="the normalised e-mail, or the username ([accounts] login)",
        )
        batch.alter_column(
            "live_erp_id",
            existing_type=sa.String(64),
            existing_nullable=True,
            comment="= erp_id while live, NULL once removed",
        )
        batch.alter_column(
            "name", existing_type=sa.Text(), existing_nullable=True, comment="the customer's (company's) name"
        )
    op.execute("UPDATE accounts SET live_key = live_erp_id WHERE live_erp_id IS NOT NULL")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ux_accounts_live_erp_id")
        batch.create_index("ix_accounts_live_erp_id", ["live_erp_id"], unique=False)
        batch.create_index("ux_accounts_live_key", ["live_key"], unique=True)
    if op.get_bind().dialect.name in ("mysql", "mariadb"):  # logins compared exactly (see schema.Login)
        for column, nullable, comment in (
            ("login", False, "the normalised e-mail, or the username ([accounts] login)"),
            ("live_login", True, "= login while live, NULL once removed (unique)"),
        ):  # MODIFY restates the whole column: its comment too
            op.alter_column(
                "accounts",
                column,
                type_=LOGIN,
                existing_type=sa.String(320),
                existing_nullable=nullable,
                comment=comment,
                existing_comment=comment,
            )
    with op.batch_alter_table("run_actions") as batch:
        batch.add_column(
            sa.Column(
                "contact_id", sa.String(64), nullable=True, comment="the contact the action concerns (contacts sources)"
            )
        )
    with op.batch_alter_table("quarantine") as batch:  # it holds identity keys now: erp_id U+001F contact_id
        batch.alter_column(
            "erp_id",
            type_=sa.String(200),
            existing_type=sa.String(64),
            existing_nullable=False,
            comment="the identity key (see accounts.live_key)",
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.alter_column("erp_id", type_=sa.String(64), existing_type=sa.String(200), existing_nullable=False)
    with op.batch_alter_table("run_actions") as batch:
        batch.drop_column("contact_id")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ux_accounts_live_key")
        batch.drop_index("ix_accounts_live_erp_id")
        batch.create_index("ux_accounts_live_erp_id", ["live_erp_id"], unique=True)
        for column in ("live_key", "attributes", "email", "contact_name", "contact_id"):
            batch.drop_column(column)
