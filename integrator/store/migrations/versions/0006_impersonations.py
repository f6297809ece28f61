"""one-time impersonation tickets ("login as customer", made auditable)

A staff member asks the API for a login URL to an account, naming themselves and a reason; the URL carries a
ticket valid 60 seconds that the portal redeems once. Only the ticket's SHA-256 is stored.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "impersonations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("ticket_hash", sa.String(64), nullable=False, comment="SHA-256 of the one-time ticket's random part"),
        sa.Column(
            "actor",
            sa.String(256),
            nullable=False,
            comment="the staff member (and API client) logging in as the customer",
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True, comment="set when the portal redeemed the ticket (once)"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_impersonations_account_id", "impersonations", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_table("impersonations")
