"""Who may see a board: the reads the REST layer and the socket layer both authorize with."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
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
