"""The board-change hook that turns board activity into notifications, in the change's transaction.

Registered by the app factory with :func:`server.boards.hooks.register_change_hook`: a rolled-back
change therefore leaves no notification, and the pushes leave through the outbox after commit.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import notification_triggers as triggers
from persistence.models import Card, Comment
from server.boards.hooks import BoardChange

_INTERESTING = frozenset(
    {"card.created", "card.updated", "comment.created", "comment.updated", "member.added", "member.removed"}
)


async def on_board_change(session: AsyncSession, change: BoardChange) -> None:
    """Notify whoever the change concerns (never its actor)."""
    event = change.event
    if event.type not in _INTERESTING:
        return
    data: dict[str, Any] = msgspec.json.decode(event.data)
    actor_id = change.actor.id
    if event.type in ("card.created", "card.updated"):
        if change.newly_assigned:
            card = await session.get(Card, UUID(data["id"]))
            if card is not None:
                await triggers.cards_assigned(
                    session, card=card, user_ids=change.newly_assigned, actor_id=actor_id
                )
    elif event.type in ("comment.created", "comment.updated"):
        comment = await session.get(Comment, UUID(data["id"]))
        if comment is not None:
            await triggers.comment_posted(
                session,
                comment=comment,
                mentioned=change.newly_mentioned,
                actor_id=actor_id,
                followers=event.type == "comment.created",
            )
    elif event.type == "member.added" and change.added_member is not None:
        await triggers.member_added(
            session,
            board_id=event.board_id,
            user_id=change.added_member,
            role=str(data.get("role", "")),
            actor_id=actor_id,
        )
    elif event.type == "member.removed":
        await triggers.member_removed(
            session, board_id=event.board_id, user_id=UUID(data["user_id"]), actor_id=actor_id
        )
