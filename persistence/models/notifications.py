"""Notifications, per-kind delivery preferences, card watchers, board webhooks and their deliveries.

``board_id`` / ``card_id`` on a notification are ``ON DELETE SET NULL``: the notification keeps its
``data`` (board name, card title at the time), so a user's history still reads right after the
board or card is gone, and unread counts never jump on someone else's deletion.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "read_at"),
        Index("ix_notifications_email_state", "email_state"),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    board_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("boards.id", ondelete="SET NULL"), default=None, index=True
    )
    card_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("cards.id", ondelete="SET NULL"), default=None, index=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    read_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # "none" | "pending" (mail now) | "sending" | "sent" | "digest" (next digest) | "digested" | "failed"
    email_state: Mapped[str] = mapped_column(String(12), default="none")
    # Set for notifications that must exist once only (due-date reminders): a unique guard that
    # holds however many workers race to create it.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)


class NotificationPreference(Base):
    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))


class CardWatch(Base):
    __tablename__ = "card_watchers"
    __table_args__ = (UniqueConstraint("card_id", "user_id"),)

    card_id: Mapped[UUID] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class Webhook(Base):
    __tablename__ = "webhooks"

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JsonB, default=list)
    secret: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    # The last board event seq turned into deliveries: the dispatcher reads the event log after it.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "event_seq"),)

    webhook_id: Mapped[UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_seq: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(40))
    # "pending" | "succeeded" | "failed" (gave up, or the webhook was disabled)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
