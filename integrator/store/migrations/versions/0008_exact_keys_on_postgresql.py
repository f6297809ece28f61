"""on PostgreSQL, ids, ERP ids, logins, identity keys and the outbox's codes in the "C" collation

They are only compared for equality (equal in every deterministic collation) or grouped, so "C" changes no
answer; it makes each comparison a `memcmp` instead of a `strcoll` and lets index builds sort on abbreviated keys
(see `schema.exact`). Each table is altered in one statement, which rebuilds the indexes on those columns once;
the rows themselves are not rewritten. Nothing changes on SQLite or MariaDB.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS: dict[str, tuple[tuple[str, int], ...]] = {
    "accounts": (
        ("id", 36), ("erp_id", 64), ("login", 320), ("live_login", 320), ("live_erp_id", 64), ("live_key", 200),
    ),
    "account_secrets": (("account_id", 36),),
    "account_events": (("account_id", 36),),
    "outbox": (("account_id", 36), ("kind", 32), ("status", 16)),
    "impersonations": (("account_id", 36),),
}  # fmt: skip
"""(column, length) of each table's columns that take the "C" collation; all are VARCHAR."""


def _alter(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The foreign key stands on accounts.id: dropped while both ends change, then made again (and checked).
    op.drop_constraint("account_secrets_account_id_fkey", "account_secrets", type_="foreignkey")
    for table, columns in COLUMNS.items():
        changes = ", ".join(f'ALTER COLUMN {name} TYPE VARCHAR({length}) COLLATE "{collation}"'
                            for name, length in columns)  # fmt: skip
        op.execute(f"ALTER TABLE {table} {changes}")
    op.create_foreign_key("account_secrets_account_id_fkey", "account_secrets", "accounts", ["account_id"], ["id"])


def upgrade() -> None:
    _alter("C")


def downgrade() -> None:
    _alter("default")
