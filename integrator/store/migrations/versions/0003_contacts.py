"""contacts, usernames and attributes

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

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("contact_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("contact_name", sa.Text(), nullable=True))
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("attributes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("live_key", sa.String(200), nullable=True))
    op.execute("UPDATE accounts SET live_key = live_erp_id WHERE live_erp_id IS NOT NULL")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ux_accounts_live_erp_id")
        batch.create_index("ix_accounts_live_erp_id", ["live_erp_id"], unique=False)
        batch.create_index("ux_accounts_live_key", ["live_key"], unique=True)
    with op.batch_alter_table("run_actions") as batch:
        batch.add_column(sa.Column("contact_id", sa.String(64), nullable=True))
    with op.batch_alter_table("quarantine") as batch:  # it holds identity keys now: erp_id U+001F contact_id
        batch.alter_column("erp_id", type_=sa.String(200), existing_type=sa.String(64), existing_nullable=False)


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
