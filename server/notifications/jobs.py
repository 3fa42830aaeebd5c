"""Notification jobs: immediate mail, the hourly digest, and a sweep for mail left pending.

Each claims its rows with a conditional UPDATE before sending (``pending → sending``,
``digest → digested``): with several workers, only the one whose UPDATE changed the row sends.
A failed send puts the rows back and raises, so the queue retries with backoff.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, update

from persistence.models import Notification, User
from server.jobs.base import deps_of, log
from server.notifications.mailing import digest_mail, notification_mail

SWEEP_AFTER = timedelta(minutes=5)
SWEEP_GIVE_UP = timedelta(days=1)


async def _set_state(ctx: dict[str, Any], ids: list[UUID], frm: str, to: str) -> list[UUID]:
    async with deps_of(ctx).sessions() as session, session.begin():
        result = await session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.email_state == frm)
            .values(email_state=to)
            .returning(Notification.id)
        )
        return list(result.scalars().all())


async def send_notification_email(ctx: dict[str, Any], *, notification_id: str) -> bool:
    """Mail one notification now (once: the row is claimed first). Returns whether it sent."""
    deps = deps_of(ctx)
    nid = UUID(notification_id)
    if not await _set_state(ctx, [nid], "pending", "sending"):
        return False
    try:
        async with deps.sessions() as session:
            row = await session.get(Notification, nid)
            user = await session.get(User, row.user_id) if row else None
        if row is None or user is None or not user.is_active:
            await _set_state(ctx, [nid], "sending", "none")
            return False
        await deps.mailer.send(notification_mail(deps.settings, user, row))
    except Exception:
        await _set_state(ctx, [nid], "sending", "pending")
        raise
    await _set_state(ctx, [nid], "sending", "sent")
    return True


async def send_digests(ctx: dict[str, Any]) -> int:
    """One mail per user batching their unread digest notifications since the last digest."""
    deps = deps_of(ctx)
    async with deps.sessions() as session:
        user_ids = (
            (
                await session.execute(
                    select(Notification.user_id).where(Notification.email_state == "digest").distinct()
                )
            )
            .scalars()
            .all()
        )
    sent, failures = 0, 0
    for user_id in user_ids:
        async with deps.sessions() as session, session.begin():
            claimed = await session.execute(
                update(Notification)
                .where(Notification.user_id == user_id, Notification.email_state == "digest")
                .values(email_state="digested")
                .returning(Notification.id)
            )
            ids = list(claimed.scalars().all())
        async with deps.sessions() as session:
            user = await session.get(User, user_id)
            rows = list(
                (
                    await session.execute(
                        select(Notification)
                        .where(Notification.id.in_(ids), Notification.read_at.is_(None))
                        .order_by(Notification.id)
                    )
                ).scalars()
            )
        if not rows or user is None or not user.is_active:
            continue  # read in the app meanwhile: nothing to tell
        try:
            await deps.mailer.send(digest_mail(deps.settings, user, rows))
            sent += 1
        except Exception:
            log.exception("notifications.digest_failed", user_id=str(user_id))
            await _set_state(ctx, ids, "digested", "digest")
            failures += 1
    if failures:
        raise RuntimeError(f"{failures} digest mail(s) failed; they stay queued for the retry")
    return sent


async def sweep_pending_mail(ctx: dict[str, Any]) -> int:
    """Requeue immediate mail still pending after a few minutes (a crash between commit and enqueue)."""
    deps = deps_of(ctx)
    now = datetime.now(UTC)
    async with deps.sessions() as session:
        ids = (
            (
                await session.execute(
                    select(Notification.id).where(
                        Notification.email_state == "pending",
                        Notification.created_at < now - SWEEP_AFTER,
                        Notification.created_at > now - SWEEP_GIVE_UP,
                    )
                )
            )
            .scalars()
            .all()
        )
    by_state: dict[str, int] = defaultdict(int)
    for nid in ids:
        if await deps.runner.enqueue(
            "send_notification_email", key=f"notification-mail:{nid}", notification_id=str(nid)
        ):
            by_state["requeued"] += 1
    return by_state["requeued"]


async def send_reminders(ctx: dict[str, Any]) -> int:
    """Due-date reminders for cards due within ``REMINDER_WINDOW_HOURS``; returns how many were new.

    Safe to run on any number of workers at once: each (card, due time, user) reminder has a unique
    ``dedupe_key``, so the database lets exactly one of them create it (and mail it)."""
    from persistence.notification_triggers import due_reminders

    deps = deps_of(ctx)
    async with deps.sessions() as session, session.begin():
        return await due_reminders(
            session, now=datetime.now(UTC), window=timedelta(hours=deps.settings.reminder_window_hours)
        )
