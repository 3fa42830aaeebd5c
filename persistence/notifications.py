"""Notifications: created inside the caller's transaction, pushed live on ``user:{id}`` after commit.

Boards code calls :func:`notify` (or :func:`notify_once` for reminders) in the same transaction as
the change that causes it, so a rolled-back change leaves no notification and pushes nothing.
The acting user is never notified of their own action.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.afterwork import queue_job
from persistence.events import UserMessage
from persistence.models import Notification, NotificationPreference
from persistence.outbox import queue_control

Kind = Literal[
    "card.assigned",
    "comment.mentioned",
    "card.commented",
    "member.added",
    "member.removed",
    "card.due",
]
Channel = Literal["in_app", "email", "digest", "off"]
KINDS: tuple[str, ...] = (
    "card.assigned",
    "comment.mentioned",
    "card.commented",
    "member.added",
    "member.removed",
    "card.due",
)
CHANNELS: tuple[str, ...] = ("in_app", "email", "digest", "off")
# Kinds that had another name (docs/notifications.md "Changes"): still read from links already mailed
# and from clients that send them, and answered under the new name.
RENAMED_KINDS: dict[str, str] = {
    "board.member_added": "member.added",
    "board.member_removed": "member.removed",
}
DEFAULT_CHANNEL: dict[str, str] = {
    "card.assigned": "email",
    "comment.mentioned": "email",
    "card.commented": "in_app",
    "member.added": "in_app",
    "member.removed": "in_app",
    "card.due": "email",
}
_EMAIL_STATE = {"in_app": "none", "email": "pending", "digest": "digest"}


class NotificationOut(msgspec.Struct, frozen=True):
    """The wire shape of a notification (REST and the ``notification.created`` push)."""

    id: UUID
    kind: str
    actor_id: UUID | None
    board_id: UUID | None
    card_id: UUID | None
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


def to_out(row: Notification) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        kind=row.kind,
        actor_id=row.actor_id,
        board_id=row.board_id,
        card_id=row.card_id,
        data=row.data,
        read_at=row.read_at,
        created_at=row.created_at,
    )


def _push(session: AsyncSession, user_id: UUID, event: str, payload: object) -> None:
    queue_control(
        session, UserMessage(user_id=user_id, event=event, payload=msgspec.Raw(msgspec.json.encode(payload)))
    )


async def channels_for(session: AsyncSession, user_ids: Iterable[UUID], kind: str) -> dict[UUID, str]:
    """Each user's channel for ``kind`` (their preference, else the default)."""
    ids = list(user_ids)
    chosen = {uid: DEFAULT_CHANNEL.get(kind, "in_app") for uid in ids}
    if ids:
        rows = await session.execute(
            select(NotificationPreference.user_id, NotificationPreference.channel).where(
                NotificationPreference.kind == kind, NotificationPreference.user_id.in_(ids)
            )
        )
        chosen.update(dict(rows.tuples().all()))
    return chosen


def _stage(session: AsyncSession, row: Notification, channel: str) -> None:
    """Push it after commit and, for mail now, queue the mail job after commit."""
    _push(session, row.user_id, "notification.created", to_out(row))
    if channel == "email":
        queue_job(
            session, "send_notification_email", key=f"notification-mail:{row.id}", notification_id=str(row.id)
        )


async def notify(
    session: AsyncSession,
    *,
    user_ids: Iterable[UUID],
    kind: str,
    actor_id: UUID | None,
    board_id: UUID | None = None,
    card_id: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> list[Notification]:
    """Create one notification of ``kind`` per recipient (except ``actor_id``) in this transaction.

    Recipients whose preference for ``kind`` is ``off`` get nothing. Returns the rows created.
    """
    recipients = {uid for uid in user_ids if uid != actor_id}
    if not recipients:
        return []
    channels = await channels_for(session, recipients, kind)
    rows = [
        Notification(
            user_id=uid,
            kind=kind,
            actor_id=actor_id,
            board_id=board_id,
            card_id=card_id,
            data=dict(data or {}),
            email_state=_EMAIL_STATE[channel],
        )
        for uid, channel in channels.items()
        if channel != "off"
    ]
    session.add_all(rows)
    await session.flush()
    for row in rows:
        _stage(session, row, channels[row.user_id])
    return rows


async def notify_once(
    session: AsyncSession,
    *,
    dedupe_key: str,
    user_id: UUID,
    kind: str,
    actor_id: UUID | None = None,
    board_id: UUID | None = None,
    card_id: UUID | None = None,
    data: dict[str, Any] | None = None,
) -> Notification | None:
    """Create the notification unless one with ``dedupe_key`` exists (a unique index decides, so
    concurrent workers create it once). Returns None when it existed or the user turned it off."""
    channel = (await channels_for(session, [user_id], kind))[user_id]
    if channel == "off":
        return None
    row = Notification(
        user_id=user_id,
        kind=kind,
        actor_id=actor_id,
        board_id=board_id,
        card_id=card_id,
        data=dict(data or {}),
        email_state=_EMAIL_STATE[channel],
        dedupe_key=dedupe_key,
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    _stage(session, row, channel)
    return row


async def unread_count(session: AsyncSession, user_id: UUID) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(result.scalar_one())


async def list_for(
    session: AsyncSession, user_id: UUID, *, unread: bool | None, after: UUID | None, limit: int
) -> tuple[Sequence[Notification], UUID | None]:
    """Newest first; ``after`` is the last id of the previous page. Returns the page and the next cursor."""
    query = select(Notification).where(Notification.user_id == user_id)
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    if after is not None:
        query = query.where(Notification.id < after)
    rows = (await session.execute(query.order_by(Notification.id.desc()).limit(limit + 1))).scalars().all()
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


async def mark_read(session: AsyncSession, user_id: UUID, notification_id: UUID) -> Notification | None:
    """Mark one read (idempotent). None when it is not this user's."""
    row = await session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        return None
    if row.read_at is None:
        row.read_at = datetime.now(UTC)
        await session.flush()
        count = await unread_count(session, user_id)
        _push(
            session,
            user_id,
            "notification.read",
            {"ids": [str(row.id)], "read_at": row.read_at, "unread_count": count},
        )
    return row


async def mark_all_read(session: AsyncSession, user_id: UUID) -> int:
    """Mark every unread notification read; returns how many changed."""
    now = datetime.now(UTC)
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
        .returning(Notification.id)
    )
    ids = [str(i) for i in result.scalars().all()]
    if ids:
        _push(
            session,
            user_id,
            "notification.read",
            {"ids": ids, "all": True, "read_at": now, "unread_count": 0},
        )
    return len(ids)


async def preferences(session: AsyncSession, user_id: UUID) -> dict[str, str]:
    """Every kind with the user's channel for it (defaults filled in)."""
    chosen = dict(DEFAULT_CHANNEL)
    rows = await session.execute(
        select(NotificationPreference.kind, NotificationPreference.channel).where(
            NotificationPreference.user_id == user_id
        )
    )
    chosen.update({kind: channel for kind, channel in rows.tuples() if kind in chosen})
    return chosen


async def set_preferences(session: AsyncSession, user_id: UUID, changes: dict[str, str]) -> dict[str, str]:
    """Set channels for the given kinds (validated by the caller); returns all preferences."""
    existing = {
        row.kind: row
        for row in (
            await session.execute(
                select(NotificationPreference).where(NotificationPreference.user_id == user_id)
            )
        ).scalars()
    }
    for kind, channel in changes.items():
        if kind in existing:
            existing[kind].channel = channel
        else:
            session.add(NotificationPreference(user_id=user_id, kind=kind, channel=channel))
    await session.flush()
    return await preferences(session, user_id)
