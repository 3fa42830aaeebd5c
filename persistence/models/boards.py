"""The collaborative domain: boards, members, labels, lists, cards, comments, checklists, event log.

``boards.seq`` is the number of the board's last event; appending an event bumps it with one
``UPDATE … RETURNING`` in the change's own transaction (see :mod:`persistence.eventlog`).
Child rows carry ``board_id`` (denormalized) so every filter and every access check is one
indexed lookup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, VersionedMixin, metadata

# Positions sort by byte order (SPEC §2): SQLite's default BINARY collation does; PostgreSQL needs "C".
POSITION = String(255).with_variant(String(255, collation="C"), "postgresql")

card_assignees = Table(
    "card_assignees",
    metadata,
    Column("card_id", GUID, ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
)

card_labels = Table(
    "card_labels",
    metadata,
    Column("card_id", GUID, ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", GUID, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Board(VersionedMixin, Base):
    __tablename__ = "boards"

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    seq: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_by: Mapped[UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )


class BoardMember(VersionedMixin, Base):
    __tablename__ = "board_members"
    __table_args__ = (UniqueConstraint("board_id", "user_id"),)

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))


class Label(VersionedMixin, Base):
    __tablename__ = "labels"

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(50), default="")
    color: Mapped[str] = mapped_column(String(16))


class BoardList(VersionedMixin, Base):
    __tablename__ = "lists"
    __table_args__ = (UniqueConstraint("board_id", "position"),)

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[str] = mapped_column(POSITION)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)


class Card(VersionedMixin, Base):
    __tablename__ = "cards"
    __table_args__ = (
        UniqueConstraint("list_id", "position"),
        Index("ix_cards_board_id_archived", "board_id", "archived"),
    )

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[UUID] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[str] = mapped_column(POSITION)
    due_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None, index=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )


class Comment(VersionedMixin, Base):
    __tablename__ = "comments"

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    card_id: Mapped[UUID] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    body: Mapped[str] = mapped_column(Text)


class Mention(Base):
    """A user named as ``@username`` in a comment (read by notifications)."""

    __tablename__ = "mentions"
    __table_args__ = (UniqueConstraint("comment_id", "user_id"),)

    comment_id: Mapped[UUID] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    card_id: Mapped[UUID] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)


class ChecklistItem(VersionedMixin, Base):
    __tablename__ = "checklist_items"
    __table_args__ = (UniqueConstraint("card_id", "position"),)

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    card_id: Mapped[UUID] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(500))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[str] = mapped_column(POSITION)


class BoardEvent(Base):
    """One change to a board; ``seq`` rises by exactly one per board (UNIQUE(board_id, seq))."""

    __tablename__ = "board_events"
    __table_args__ = (UniqueConstraint("board_id", "seq"),)

    board_id: Mapped[UUID] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    data: Mapped[Any] = mapped_column(JsonB)
