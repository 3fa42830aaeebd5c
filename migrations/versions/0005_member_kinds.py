"""Notification kinds board.member_added / board.member_removed are now member.added / member.removed.

One name per concept across REST, events and notifications (docs/notifications.md "Changes").

Revision ID: 0005_member_kinds
Revises: 0004_account_hardening
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_member_kinds"
down_revision: str | None = "0004_account_hardening"
branch_labels = None
depends_on = None

RENAMED = {"board.member_added": "member.added", "board.member_removed": "member.removed"}


def _rename(pairs: dict[str, str]) -> None:
    for table_name in ("notifications", "notification_preferences"):
        table = sa.table(table_name, sa.column("kind", sa.String))
        for old, new in pairs.items():
            op.execute(table.update().where(table.c.kind == old).values(kind=new))


def upgrade() -> None:
    _rename(RENAMED)


def downgrade() -> None:
    _rename({new: old for old, new in RENAMED.items()})
