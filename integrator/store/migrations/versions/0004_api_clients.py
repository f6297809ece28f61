"""the portal API's clients, their secrets and the bearer tokens issued to them

Only hashes are stored: a client secret's argon2id hash (the secret is printed once by `integrator api-client
add`) and a token's SHA-256 (a token is 256 random bits, so a fast hash is enough to keep a leaked table useless).
Two secrets of a client may be valid at once while it rotates.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(64), nullable=False, comment="the client id a caller sends (HTTP Basic user name)"),
        sa.Column("name", sa.String(128), nullable=False, comment="the operator's name for the client, unique"),
        sa.Column("scopes", sa.String(256), nullable=False, comment="space-separated: portal | staff | sales_rep"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_api_clients_name", "api_clients", ["name"], unique=True)
    op.create_table(
        "api_client_secrets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False, comment="argon2id hash; the secret itself is printed once"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True, comment="NULL: valid until a rotation gives it an end"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_client_secrets_client_id", "api_client_secrets", ["client_id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column(
            "token_hash", sa.String(64), nullable=False, comment="SHA-256 (hex) of the bearer token; never the token"
        ),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(256), nullable=False, comment="space-separated scopes the token carries"),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_client_id", "api_tokens", ["client_id"], unique=False)
    op.create_index("ix_api_tokens_expires_at", "api_tokens", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("api_client_secrets")
    op.drop_table("api_clients")
