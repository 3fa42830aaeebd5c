"""Request bodies of the board routes, with the limits every field is held to.

PATCH bodies use ``UNSET`` for "not sent", so ``null`` can clear a field (``due_at``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from persistence.boards.shapes import BoardSummary, CardOut, CommentOut, LabelOut, MemberOut
from server.pagination import Page
from server.times import to_utc

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LabelName = Annotated[str, msgspec.Meta(max_length=50)]
Color = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
CommentBody = Annotated[str, msgspec.Meta(min_length=1, max_length=5_000)]
ItemText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Version = Annotated[int, msgspec.Meta(ge=1)]
Due = Annotated[datetime, msgspec.Meta(tz=True)]
IdList = Annotated[list[UUID], msgspec.Meta(max_length=50)]
Role = Literal["owner", "admin", "member", "observer"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


class BoardIn(msgspec.Struct):
    name: Name
    description: Description = ""


class BoardPatch(msgspec.Struct):
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    version: Version | UnsetType | None = UNSET


class MemberIn(msgspec.Struct):
    user_id: UUID | None = None
    email: Email | None = None
    role: Role = "member"


class MemberPatch(msgspec.Struct):
    role: Role
    version: Version | UnsetType | None = UNSET


class LabelIn(msgspec.Struct):
    color: Color
    name: LabelName = ""


class LabelPatch(msgspec.Struct):
    name: LabelName | UnsetType = UNSET
    color: Color | UnsetType = UNSET
    version: Version | UnsetType | None = UNSET


class ListIn(msgspec.Struct):
    name: Name
    before_id: UUID | None = None
    after_id: UUID | None = None


class ListPatch(msgspec.Struct):
    name: Name | UnsetType = UNSET
    archived: bool | UnsetType = UNSET
    before_id: UUID | UnsetType | None = UNSET
    after_id: UUID | UnsetType | None = UNSET
    version: Version | UnsetType | None = UNSET


class CardIn(msgspec.Struct):
    title: Title
    description: Description = ""
    before_id: UUID | None = None
    after_id: UUID | None = None
    due_at: Due | None = None
    assignee_ids: IdList = msgspec.field(default_factory=list)
    label_ids: IdList = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.due_at is not None:
            self.due_at = to_utc(self.due_at)


class CardPatch(msgspec.Struct):
    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    due_at: Due | UnsetType | None = UNSET
    archived: bool | UnsetType = UNSET
    assignee_ids: IdList | UnsetType = UNSET
    label_ids: IdList | UnsetType = UNSET
    version: Version | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.due_at, datetime):
            self.due_at = to_utc(self.due_at)


class CardMove(msgspec.Struct):
    list_id: UUID
    before_id: UUID | None = None
    after_id: UUID | None = None
    version: Version | UnsetType | None = UNSET


class CommentIn(msgspec.Struct):
    body: CommentBody


class CommentPatch(msgspec.Struct):
    body: CommentBody
    version: Version | UnsetType | None = UNSET


class ChecklistIn(msgspec.Struct):
    text: ItemText
    done: bool = False


class ChecklistPatch(msgspec.Struct):
    text: ItemText | UnsetType = UNSET
    done: bool | UnsetType = UNSET
    version: Version | UnsetType | None = UNSET


class SearchHit(msgspec.Struct):
    kind: Literal["card", "comment"]
    board_id: UUID
    card_id: UUID
    title: str
    snippet: str
    comment_id: UUID | None = None


# The collections, each a named page (server/pagination.py says why).
class BoardPage(Page[BoardSummary]):
    items: list[BoardSummary]


class MemberPage(Page[MemberOut]):
    items: list[MemberOut]


class LabelPage(Page[LabelOut]):
    items: list[LabelOut]


class CardPage(Page[CardOut]):
    items: list[CardOut]


class CommentPage(Page[CommentOut]):
    items: list[CommentOut]


class SearchPage(Page[SearchHit]):
    items: list[SearchHit]
