"""What a topic is and who may join it.

``board:{id}`` (any member), ``list:{id}`` and ``card:{id}`` (members of the owning board) and
``user:{id}`` (that user only). A topic that does not exist and one the user may not see give
the same answer, so topic names cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from persistence import access
from persistence.models import BoardList, Card

BOARD, LIST, CARD, USER = "board", "list", "card", "user"
KINDS = frozenset({BOARD, LIST, CARD, USER})


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    kind: str
    id: UUID


def parse_topic(name: str) -> Topic | None:
    """``board:…`` etc. with a canonical UUID; anything else is None (``bad_request``)."""
    kind, sep, raw = name.partition(":")
    if not sep or kind not in KINDS:
        return None
    try:
        ident = UUID(raw)
    except ValueError:
        return None
    if str(ident) != raw.lower():
        return None
    return Topic(name=f"{kind}:{ident}", kind=kind, id=ident)


def board_topic(board_id: UUID) -> str:
    return f"board:{board_id}"


@dataclass(frozen=True, slots=True)
class Grant:
    """A user may join a board-scoped topic: its board, and the user's role there."""

    board_id: UUID
    role: str  # "owner" | "admin" | "member" | "observer"


class TopicAccess(Protocol):
    """Answers "may this user join this topic": for board-scoped topics, the board and the role."""

    async def board_for(self, topic: Topic, user_id: UUID) -> Grant | None: ...


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a socket belongs to: the user, and the session (or personal access token) it lives by."""

    user_id: UUID
    credential_id: UUID
    expires_at: float | None = None  # when the session or token ends (Unix time); None: never
    can_write: bool = True  # False for a read-only personal access token

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class Unavailable(Exception):
    """The database cannot answer now: the client should retry later, its credential may be fine."""


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Identity | None: ...

    async def revoked(self, credential_ids: set[UUID]) -> set[UUID]:
        """Which of these sessions / personal access tokens are no longer valid."""
        ...


class DatabaseAccess:
    """:class:`TopicAccess` over ``persistence.access`` (one short read-only session per join)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def board_for(self, topic: Topic, user_id: UUID) -> Grant | None:
        async with self.sessions() as session:
            board_id: UUID | None
            if topic.kind == BOARD:
                board_id, role = topic.id, await access.board_role(session, topic.id, user_id)
            elif topic.kind in (LIST, CARD):
                model = BoardList if topic.kind == LIST else Card
                board_id, role = await access.board_and_role_of(session, model, topic.id, user_id)
            else:
                return None
            return Grant(board_id, role) if board_id is not None and role is not None else None
