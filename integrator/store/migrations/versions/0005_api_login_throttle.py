"""the portal API's login throttle

One row per throttled key (a login, or a customer's IP address the portal passes on): how many attempts it made
since its last success or quiet spell, and when the next one may be checked. A row exists only while a key has
recent failures; a success or 15 quiet minutes remove it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
KEY = sa.String(400).with_variant(mysql.VARCHAR(400, collation="utf8mb4_bin"), "mysql", "mariadb")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_login_throttle",
        sa.Column(
            "key",
            KEY,
            nullable=False,
            comment="'login:' + a normalised login, or 'ip:' + a customer's address (compared exactly, like logins)",
        ),
        sa.Column(
            "failures", sa.Integer(), nullable=False, comment="attempts counted since the last success or quiet spell"
        ),
        sa.Column(
            "next_allowed_at", TIMESTAMP, nullable=False, comment="no attempt for this key is checked before then"
        ),
        sa.Column("last_attempt_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("api_login_throttle")
