"""account hardening: verification tokens bound to an address, usernames held by registrations of
existing emails, no per-account lockout columns (logins are throttled per account and address in
Redis or memory: server/auth/lockout.py)

Revision ID: 0004_account_hardening
Revises: 0003_notifications
Create Date: 2026-12-04 15:36:59.524363
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "0004_account_hardening"
down_revision: str | None = "0003_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reserved_usernames",
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reserved_usernames")),
        sa.UniqueConstraint("username", name=op.f("uq_reserved_usernames_username")),
    )
    # Tokens issued before this revision have no address and verify nothing (a new link is one
    # resend away): an old token could be spent after an email change, which is the hole closed here.
    with op.batch_alter_table("one_time_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("one_time_tokens", schema=None) as batch_op:
        batch_op.drop_column("email")

    op.drop_table("reserved_usernames")
