"""What happens to a deleted user's boards (docs/auth.md, "Deleting a user").

- A board the user owns, with no other owner, passes to its longest-standing admin member
  (earliest to join), who becomes owner; with no admin member it is deleted with everything on it.
- Every board the user belonged to gets ``member.removed`` for them (and ``member.updated`` for an
  heir), so open clients drop them from the member list; sockets on a deleted board are closed.

Runs inside the transaction that deletes the user, before the user row goes; the rest of the
user's rows (memberships, assignments) follow the foreign keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.boards.read import member_view
from persistence.boards.shapes import Deleted
from persistence.eventlog import allocate_seq, record_event
from persistence.events import AccessRevoked, BoardDeleted
from persistence.models import Board, BoardMember
from persistence.outbox import queue_control
from server.boards.search import unindex_board


@dataclass
class ReleasedBoards:
    transferred: dict[UUID, UUID] = field(default_factory=dict)  # board id -> new owner id
    deleted: list[UUID] = field(default_factory=list)


async def release_owned_boards(
    session: AsyncSession, user_id: UUID, *, actor_id: UUID | None = None
) -> ReleasedBoards:
    """Hand over or delete the boards ``user_id`` owns alone, and announce their departure from
    every board they belong to (no commit: part of the deletion).

    Args:
        session: The transaction deleting the user.
        user_id: The user being deleted.
        actor_id: Who is deleting them (None: the user themself); the events' actor.
    """
    released = ReleasedBoards()
    memberships = list(
        await session.scalars(
            select(BoardMember).where(BoardMember.user_id == user_id).order_by(BoardMember.board_id)
        )
    )
    for membership in memberships:
        board_id = membership.board_id
        if membership.role == "owner" and not await _has_other_owner(session, board_id, user_id):
            heir = await session.scalar(
                select(BoardMember)
                .where(
                    BoardMember.board_id == board_id,
                    BoardMember.role == "admin",
                    BoardMember.user_id != user_id,
                )
                .order_by(BoardMember.created_at, BoardMember.id)
                .limit(1)
            )
            if heir is None:
                await _delete_board(session, board_id, actor_id)
                released.deleted.append(board_id)
                continue
            seq = await allocate_seq(session, board_id)
            heir.role = "owner"
            heir.version += 1
            await session.flush()
            record_event(
                session,
                board_id=board_id,
                seq=seq,
                type="member.updated",
                actor_id=actor_id,
                data=await member_view(session, board_id, heir.user_id),
            )
            released.transferred[board_id] = heir.user_id
        seq = await allocate_seq(session, board_id)
        queue_control(session, AccessRevoked(board_id=board_id, user_id=user_id))
        record_event(
            session,
            board_id=board_id,
            seq=seq,
            type="member.removed",
            actor_id=actor_id,
            data=Deleted(id=user_id, board_id=board_id, user_id=user_id),
        )
    return released


async def _has_other_owner(session: AsyncSession, board_id: UUID, user_id: UUID) -> bool:
    other = await session.scalar(
        select(BoardMember.id)
        .where(BoardMember.board_id == board_id, BoardMember.role == "owner", BoardMember.user_id != user_id)
        .limit(1)
    )
    return other is not None


async def _delete_board(session: AsyncSession, board_id: UUID, actor_id: UUID | None) -> None:
    seq = await allocate_seq(session, board_id)
    board = await session.get(Board, board_id)
    await unindex_board(session, board_id)
    if board is not None:
        await session.delete(board)
    await session.flush()
    queue_control(session, BoardDeleted(board_id=board_id))
    # The log goes with the board; the event still reaches every socket on it.
    record_event(
        session,
        board_id=board_id,
        seq=seq,
        type="board.deleted",
        actor_id=actor_id,
        data=Deleted(id=board_id, board_id=board_id),
        store=False,
    )
