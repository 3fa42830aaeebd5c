"""What the boards services call to notify people, inside their own transaction.

Each function looks up the names a notification shows (actor, board, card) once, so the stored
notification still reads right after a rename or deletion, and hands the recipients to
:func:`persistence.notifications.notify`, which never notifies the actor.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Board, Card, CardWatch, Comment, User, card_assignees
from persistence.notifications import notify, notify_once

EXCERPT = 200


async def _names(
    session: AsyncSession, actor_id: UUID | None, board_id: UUID, card: Card | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if actor_id is not None:
        actor = await session.get(User, actor_id)
        if actor is not None:
            data["actor_name"] = actor.display_name or actor.username
            data["actor_username"] = actor.username
    board_name = await session.scalar(select(Board.name).where(Board.id == board_id))
    data["board_name"] = board_name or ""
    if card is not None:
        data["card_title"] = card.title
    return data


async def cards_assigned(
    session: AsyncSession, *, card: Card, user_ids: Iterable[UUID], actor_id: UUID | None
) -> None:
    """``user_ids`` were just assigned to ``card`` (pass only the new ones)."""
    users = list(user_ids)
    if not users:
        return
    data = await _names(session, actor_id, card.board_id, card)
    await notify(
        session,
        user_ids=users,
        kind="card.assigned",
        actor_id=actor_id,
        board_id=card.board_id,
        card_id=card.id,
        data=data,
    )


async def comment_posted(
    session: AsyncSession,
    *,
    comment: Comment,
    mentioned: Iterable[UUID],
    actor_id: UUID | None,
    followers: bool = True,
) -> None:
    """Mentioned members get ``comment.mentioned``; with ``followers`` (a new comment, not an edit)
    the card's assignees and watchers get ``card.commented`` (once: a mention wins)."""
    card = await session.get(Card, comment.card_id)
    if card is None:
        return
    data = await _names(session, actor_id, comment.board_id, card)
    data["comment_id"] = str(comment.id)
    data["excerpt"] = comment.body if len(comment.body) <= EXCERPT else comment.body[: EXCERPT - 1] + "…"
    mentioned_ids = set(mentioned)
    await notify(
        session,
        user_ids=mentioned_ids,
        kind="comment.mentioned",
        actor_id=actor_id,
        board_id=comment.board_id,
        card_id=card.id,
        data=data,
    )
    if not followers:
        return
    following = set(
        (
            await session.scalars(select(card_assignees.c.user_id).where(card_assignees.c.card_id == card.id))
        ).all()
    ) | set((await session.scalars(select(CardWatch.user_id).where(CardWatch.card_id == card.id))).all())
    await notify(
        session,
        user_ids=following - mentioned_ids,
        kind="card.commented",
        actor_id=actor_id,
        board_id=comment.board_id,
        card_id=card.id,
        data=data,
    )


async def member_added(
    session: AsyncSession, *, board_id: UUID, user_id: UUID, role: str, actor_id: UUID | None
) -> None:
    data = await _names(session, actor_id, board_id)
    data["role"] = role
    await notify(
        session,
        user_ids=[user_id],
        kind="member.added",
        actor_id=actor_id,
        board_id=board_id,
        data=data,
    )


async def member_removed(
    session: AsyncSession, *, board_id: UUID, user_id: UUID, actor_id: UUID | None
) -> None:
    data = await _names(session, actor_id, board_id)
    await notify(
        session,
        user_ids=[user_id],
        kind="member.removed",
        actor_id=actor_id,
        board_id=board_id,
        data=data,
    )
    # Watching a card one can no longer see would leak its comments.
    card_ids = select(Card.id).where(Card.board_id == board_id)
    await session.execute(
        delete(CardWatch).where(CardWatch.user_id == user_id, CardWatch.card_id.in_(card_ids))
    )


async def due_reminders(session: AsyncSession, *, now: datetime, window: timedelta) -> int:
    """Notify assignees of cards due within ``window`` from ``now`` (not archived), once per
    (card, due time, user) whatever the number of workers. Returns how many were created."""
    rows = (
        await session.execute(
            select(Card, card_assignees.c.user_id)
            .join(card_assignees, card_assignees.c.card_id == Card.id)
            .where(
                Card.due_at.is_not(None),
                Card.due_at > now,
                Card.due_at <= now + window,
                Card.archived.is_(False),
            )
        )
    ).all()
    created = 0
    for card, user_id in rows:
        due = card.due_at.astimezone(UTC) if card.due_at.tzinfo else card.due_at.replace(tzinfo=UTC)
        data = await _names(session, None, card.board_id, card)
        data["due_at"] = due.strftime("%Y-%m-%d %H:%M UTC")
        made = await notify_once(
            session,
            dedupe_key=f"card.due:{card.id}:{due.isoformat()}:{user_id}",
            user_id=user_id,
            kind="card.due",
            board_id=card.board_id,
            card_id=card.id,
            data=data,
        )
        created += made is not None
    return created
