"""renormalise stored logins

Logins used to be the e-mail trimmed and lower-cased; they are now email-validator's normal form, lower-cased
(`integrator.records.normalize_login`: NFC, one canonical IDNA domain). Every stored `login` (and `live_login`,
while live) is brought to that form, so a portal, CLI or sync lookup, which normalises what it is given, finds it.

Two live accounts may now share a login (an NFD and an NFC spelling, `café.pl` and `xn--caf-dma.pl`). The sync's
contest settles that, loudly: the one whose stored login already is the normal form keeps it, else the smallest
erp_id (`reconcile.erp_sort_key`) takes it; the others keep their stored login unchanged, and their fingerprint is
cleared so the next sync judges their record again and rejects it as `duplicate_email` (a loser keeps its live
account, as reconcile's rules say). Each collision is logged as a warning naming the accounts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integrator.logs import get_logger
from integrator.reconcile import erp_sort_key
from integrator.records import normalize_login

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The columns this revision reads and writes, as they are at 0001 (not the current schema module).
accounts = sa.table(
    "accounts",
    sa.column("id", sa.String),
    sa.column("erp_id", sa.String),
    sa.column("login", sa.String),
    sa.column("live_login", sa.String),
    sa.column("fingerprint", sa.String),
)

NEVER_MATCHES = ""
"""A fingerprint no row digest equals: the next sync judges the record instead of skipping it as unchanged."""


def upgrade() -> None:
    conn = op.get_bind()
    log = get_logger("store.migrate")
    rows = conn.execute(sa.select(accounts.c.id, accounts.c.erp_id, accounts.c.login, accounts.c.live_login)).all()
    changes: list[dict[str, str | None]] = []
    contenders: dict[str, list[sa.Row]] = {}
    for row in rows:
        login = normalize_login(row.login)
        if row.live_login is not None:
            contenders.setdefault(login, []).append(row)
        elif login != row.login:  # a closed identity: no uniqueness to settle, only the spelling
            changes.append({"b_id": row.id, "b_login": login, "b_live": None})
    losers: list[str] = []
    for login, group in contenders.items():
        owner = next((r for r in group if r.live_login == login), None)
        winner = owner or min(group, key=lambda r: erp_sort_key(r.erp_id))
        if winner.live_login != login:
            changes.append({"b_id": winner.id, "b_login": login, "b_live": login})
        others = [r for r in group if r is not winner]
        if others:
            losers.extend(r.id for r in others)
            log.warning(
                "login_collision",
                login=login,
                kept_by={"erp_id": winner.erp_id, "account_id": winner.id},
                unchanged=[{"erp_id": r.erp_id, "account_id": r.id, "login": r.login} for r in others],
                message=f"accounts of customers {', '.join(r.erp_id for r in group)} share the login {login!r}; "
                f"customer {winner.erp_id} keeps it, the others keep their stored login until the next sync "
                "rejects them as duplicate_email",
            )
    if changes:
        conn.execute(
            accounts.update()
            .where(accounts.c.id == sa.bindparam("b_id"))
            .values(login=sa.bindparam("b_login"), live_login=sa.bindparam("b_live")),
            changes,
        )
    if losers:
        conn.execute(
            accounts.update().where(accounts.c.id == sa.bindparam("b_id")).values(fingerprint=NEVER_MATCHES),
            [{"b_id": account_id} for account_id in losers],
        )


def downgrade() -> None:
    """Nothing to undo: the old spelling of a login is not kept, and the normal form is a valid login too."""
