"""A user's username and display name are part of every board they belong to (``members`` of
``GET /boards/{id}``): a change to them is a ``member.updated`` event on each of those boards."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.boards.read import member_view
from persistence.eventlog import allocate_seq, record_event
from persistence.models import BoardMember
from server.errors import Conflict


async def announce_member(session: AsyncSession, user_id: UUID, *, actor_id: UUID | None) -> None:
    """Record ``member.updated`` on every board of ``user_id``: the membership as it is now, its
    ``version`` unchanged (the membership itself did not change). No commit: part of the change to
    the user. The user's row is locked first (flushed), then the boards in id order. A member being
    added meanwhile reads the user with a share lock (``BoardService.add_member``), so it waits for
    this change and shows it.
    """
    await session.flush()  # the user's new names, for member_view
    board_ids = list(
        await session.scalars(
            select(BoardMember.board_id).where(BoardMember.user_id == user_id).order_by(BoardMember.board_id)
        )
    )
    for board_id in board_ids:
        seq = await allocate_seq(session, board_id)
        member = await member_view(session, board_id, user_id)
        if member is None:  # removed meanwhile: its number is taken, and no event may be missing
            raise Conflict("A board of this user changed at the same moment; try again.")
        record_event(
            session, board_id=board_id, seq=seq, type="member.updated", actor_id=actor_id, data=member
        )
