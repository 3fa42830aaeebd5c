"""Who may see a board: the reads the REST layer and the socket layer both authorize with."""

from __future__ import annotations

from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import BoardList, BoardMember, Card

# Statements on every request's path are built once: building one (operators, coercions, its cache
# key) costs more CPU than executing it.
_ROLE = select(BoardMember.role).where(
    BoardMember.board_id == bindparam("board_id"), BoardMember.user_id == bindparam("user_id")
)


def _with_role(model: type[BoardList] | type[Card], *columns: Any) -> Select[Any]:
    """``columns`` of the list or card ``:item_id`` and the role of ``:user_id`` on its board
    (NULL when not a member), in one statement."""
    entity: Any = model
    return (
        select(*columns, BoardMember.role)
        .outerjoin(
            BoardMember,
            and_(BoardMember.board_id == entity.board_id, BoardMember.user_id == bindparam("user_id")),
        )
        .where(entity.id == bindparam("item_id"))
    )


@cache
def _board_and_role_stmt(model: type[BoardList] | type[Card]) -> Select[Any]:
    return _with_role(model, model.board_id)


@cache
def _item_and_role_stmt(model: type[BoardList] | type[Card], for_update: bool) -> Select[Any]:
    stmt = _with_role(model, model).execution_options(populate_existing=True)
    # Only the item's row is locked (``FOR NO KEY UPDATE OF cards``), never the membership.
    return stmt.with_for_update(of=model, key_share=True) if for_update else stmt


async def item_and_role(
    session: AsyncSession,
    model: type[BoardList] | type[Card],
    item_id: UUID,
    user_id: UUID,
    *,
    for_update: bool = False,
) -> tuple[Any, str | None]:
    """``(the list or card as committed now, the user's role on its board)`` in one query; ``None``
    for what is missing. ``for_update`` locks the item's row until the transaction ends."""
    row = (
        await session.execute(
            _item_and_role_stmt(model, for_update), {"item_id": item_id, "user_id": user_id}
        )
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


async def board_role(session: AsyncSession, board_id: UUID, user_id: UUID) -> str | None:
    """The user's role on the board ("owner" | "admin" | "member" | "observer"), or None."""
    return (await session.execute(_ROLE, {"board_id": board_id, "user_id": user_id})).scalar_one_or_none()


async def board_and_role_of(
    session: AsyncSession, model: type[BoardList] | type[Card], item_id: UUID, user_id: UUID
) -> tuple[UUID | None, str | None]:
    """``(board of the list or card, the user's role there)`` in one query; ``None`` for what is
    missing (no such item; not a member)."""
    row = (
        await session.execute(_board_and_role_stmt(model), {"item_id": item_id, "user_id": user_id})
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]
