"""Who may see a board: the reads the REST layer and the socket layer both authorize with."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import BoardList, BoardMember, Card

ROLES = ("owner", "admin", "member", "observer")


async def board_role(session: AsyncSession, board_id: UUID, user_id: UUID) -> str | None:
    """The user's role on the board ("owner" | "admin" | "member" | "observer"), or None."""
    return (
        await session.execute(
            select(BoardMember.role).where(BoardMember.board_id == board_id, BoardMember.user_id == user_id)
        )
    ).scalar_one_or_none()


async def board_id_of_list(session: AsyncSession, list_id: UUID) -> UUID | None:
    return (
        await session.execute(select(BoardList.board_id).where(BoardList.id == list_id))
    ).scalar_one_or_none()


async def board_id_of_card(session: AsyncSession, card_id: UUID) -> UUID | None:
    return (await session.execute(select(Card.board_id).where(Card.id == card_id))).scalar_one_or_none()


async def board_and_role_of(
    session: AsyncSession, model: type[BoardList] | type[Card], item_id: UUID, user_id: UUID
) -> tuple[UUID | None, str | None]:
    """``(board of the list or card, the user's role there)`` in one query; ``None`` for what is
    missing (no such item; not a member)."""
    parent: Any = model
    row = (
        await session.execute(
            select(parent.board_id, BoardMember.role)
            .outerjoin(
                BoardMember, and_(BoardMember.board_id == parent.board_id, BoardMember.user_id == user_id)
            )
            .where(parent.id == item_id)
        )
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]
