"""Wire shapes of the board domain: the REST representations, also used as event ``data``.

An event carries the resource exactly as REST shows it after the change, so one encoder serves
both and a client can apply an event by replacing its copy of the resource.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from persistence.models import Board, BoardList, BoardMember, Card, ChecklistItem, Comment, Label, User


class BoardOut(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    description: str
    version: int
    created_at: datetime
    updated_at: datetime


class BoardSummary(BoardOut, kw_only=True):
    """An item of ``GET /boards``: the board and the caller's role on it."""

    role: str
    seq: int


class MemberOut(msgspec.Struct, kw_only=True):
    user_id: UUID
    board_id: UUID
    username: str
    display_name: str
    role: str
    version: int
    created_at: datetime


class LabelOut(msgspec.Struct, kw_only=True):
    id: UUID
    board_id: UUID
    name: str
    color: str
    version: int
    created_at: datetime
    updated_at: datetime


class ListOut(msgspec.Struct, kw_only=True):
    id: UUID
    board_id: UUID
    name: str
    position: str
    archived: bool
    version: int
    created_at: datetime
    updated_at: datetime


class CardOut(msgspec.Struct, kw_only=True):
    id: UUID
    board_id: UUID
    list_id: UUID
    title: str
    description: str
    position: str
    due_at: datetime | None
    archived: bool
    assignee_ids: list[UUID]
    label_ids: list[UUID]
    created_by: UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class CardMoved(CardOut, kw_only=True):
    """``card.moved`` data: the card after the move and the list it left."""

    previous_list_id: UUID


class CommentOut(msgspec.Struct, kw_only=True):
    id: UUID
    board_id: UUID
    card_id: UUID
    author_id: UUID | None
    body: str
    mentions: list[UUID]
    version: int
    created_at: datetime
    updated_at: datetime


class ChecklistItemOut(msgspec.Struct, kw_only=True):
    id: UUID
    board_id: UUID
    card_id: UUID
    text: str
    done: bool
    position: str
    version: int
    created_at: datetime
    updated_at: datetime


class CardDetail(CardOut, kw_only=True):
    """``GET /cards/{id}``: the card with its checklist."""

    checklist: list[ChecklistItemOut]


class BoardDetail(BoardOut, kw_only=True):
    """``GET /boards/{id}``: the whole board at ``seq``."""

    seq: int
    lists: list[ListOut]
    cards: list[CardOut]
    labels: list[LabelOut]
    members: list[MemberOut]


class Deleted(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``*.deleted`` / ``member.removed`` data: what is gone, with the ids events are routed by."""

    id: UUID
    board_id: UUID
    list_id: UUID | None = None
    card_id: UUID | None = None
    user_id: UUID | None = None


def board_out(board: Board) -> BoardOut:
    return BoardOut(
        id=board.id,
        name=board.name,
        description=board.description,
        version=board.version,
        created_at=board.created_at,
        updated_at=board.updated_at,
    )


def member_out(member: BoardMember, user: User) -> MemberOut:
    return MemberOut(
        user_id=member.user_id,
        board_id=member.board_id,
        username=user.username,
        display_name=user.display_name,
        role=member.role,
        version=member.version,
        created_at=member.created_at,
    )


def label_out(label: Label) -> LabelOut:
    return LabelOut(
        id=label.id,
        board_id=label.board_id,
        name=label.name,
        color=label.color,
        version=label.version,
        created_at=label.created_at,
        updated_at=label.updated_at,
    )


def list_out(row: BoardList) -> ListOut:
    return ListOut(
        id=row.id,
        board_id=row.board_id,
        name=row.name,
        position=row.position,
        archived=row.archived,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def card_out(card: Card, assignee_ids: list[UUID], label_ids: list[UUID]) -> CardOut:
    return CardOut(
        id=card.id,
        board_id=card.board_id,
        list_id=card.list_id,
        title=card.title,
        description=card.description,
        position=card.position,
        due_at=card.due_at,
        archived=card.archived,
        assignee_ids=sorted(assignee_ids),
        label_ids=sorted(label_ids),
        created_by=card.created_by,
        version=card.version,
        created_at=card.created_at,
        updated_at=card.updated_at,
    )


def comment_out(comment: Comment, mentions: list[UUID]) -> CommentOut:
    return CommentOut(
        id=comment.id,
        board_id=comment.board_id,
        card_id=comment.card_id,
        author_id=comment.author_id,
        body=comment.body,
        mentions=sorted(mentions),
        version=comment.version,
        created_at=comment.created_at,
        updated_at=comment.updated_at,
    )


def checklist_out(item: ChecklistItem) -> ChecklistItemOut:
    return ChecklistItemOut(
        id=item.id,
        board_id=item.board_id,
        card_id=item.card_id,
        text=item.text,
        done=item.done,
        position=item.position,
        version=item.version,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )
