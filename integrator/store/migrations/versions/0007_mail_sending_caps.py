"""sending caps: a ledger of recent sends and the gate row deliveries take turns on

`mail_sends` holds one row per message handed to the relay in the last 24 hours; `[mail] max_per_minute` and
`max_per_day` count its rows in a sliding window. `mail_send_gate` has one row, updated first by every delivery
that takes send slots under a cap, so two processes (two `mail deliver`, the daemon and a CLI) take turns and
together stay under the caps on SQLite, PostgreSQL and MariaDB alike.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=False, comment="the outbox row this send slot was taken for"),
        sa.Column("sent_at", TIMESTAMP, nullable=False, comment="when the slot was taken (naive UTC)"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mail_sends_mail_id", "mail_sends", ["mail_id"], unique=False)
    op.create_index("ix_mail_sends_sent_at", "mail_sends", ["sent_at"], unique=False)
    gate = op.create_table(
        "mail_send_gate",
        sa.Column("name", sa.String(32), nullable=False, comment="'send': the one row"),
        sa.Column("claims", sa.Integer(), nullable=False, comment="times a delivery took its turn here"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(gate, [{"name": "send", "claims": 0}])


def downgrade() -> None:
    op.drop_table("mail_send_gate")
    op.drop_table("mail_sends")
