"""Who may see a board: the reads the REST layer and the socket layer both authorize with."""

from __future__ import annotations

from datetime import UTC
from functools import cache
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from sqlalchemy import Select, Text, and_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.boards.shapes import ChecklistItemOut
from persistence.db import NO_ROW, hot
from persistence.models import Board, BoardList, BoardMember, Card, ChecklistItem, card_assignees, card_labels

# Statements on every request's path are built once: building one (operators, coercions, its cache
# key) costs more CPU than executing it.
_ROLE = select(BoardMember.role).where(
    BoardMember.board_id == bindparam("board_id"), BoardMember.user_id == bindparam("user_id")
)


def with_role(model: type[BoardList] | type[Card], *columns: Any) -> Select[Any]:
    """``columns`` of the list or card ``:item_id`` and the role of ``:user_id`` on its board
    (NULL when not a member), in one statement."""
    entity: Any = model
    return (
        select(*columns, BoardMember.role)
        .outerjoin(
            BoardMember,
            and_(BoardMember.board_id == entity.board_id, BoardMember.user_id == bindparam("user_id")),
        )
        .where(entity.id == bindparam("item_id"))
    )


@cache
def _board_and_role_stmt(model: type[BoardList] | type[Card]) -> Select[Any]:
    return with_role(model, model.board_id)


def _item_read(model: type[BoardList] | type[Card], for_update: bool, *extra: Any) -> Select[Any]:
    """The item as committed now (refreshing any copy in the session), ``extra`` columns, and the
    caller's role; ``for_update`` locks the item's row only (``FOR NO KEY UPDATE OF cards``), never
    the membership."""
    stmt = with_role(model, model, *extra).execution_options(populate_existing=True)
    return stmt.with_for_update(of=model, key_share=True) if for_update else stmt


@cache
def _item_and_role_stmt(model: type[BoardList] | type[Card], for_update: bool) -> Select[Any]:
    return _item_read(model, for_update)


async def item_and_role(
    session: AsyncSession,
    model: type[BoardList] | type[Card],
    item_id: UUID,
    user_id: UUID,
    *,
    for_update: bool = False,
) -> tuple[Any, str | None]:
    """``(the list or card as committed now, the user's role on its board)`` in one query; ``None``
    for what is missing. ``for_update`` locks the item's row until the transaction ends."""
    row = (
        await session.execute(
            _item_and_role_stmt(model, for_update), {"item_id": item_id, "user_id": user_id}
        )
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


def _ids_of(column: Any, key: Any) -> Any:
    """``column`` of the rows whose ``key`` is the card's id, as one array (NULL when none)."""
    return select(func.array_agg(column)).where(key == Card.id).scalar_subquery()


def _card_read(for_update: bool) -> Select[Any]:
    """PostgreSQL: the card, its assignee ids and label ids, and the caller's role."""
    return _item_read(
        Card,
        for_update,
        _ids_of(card_assignees.c.user_id, card_assignees.c.card_id),
        _ids_of(card_labels.c.label_id, card_labels.c.card_id),
    )


_card_then = Card.__table__.alias("card_then")
# What the statement's snapshot holds, beside the locked row: the card's version and its board's
# seq. A ``FOR NO KEY UPDATE`` that waited for the card's lock returns the newest version of the
# card row, but every subquery (its assignees and labels too) still reads the snapshot taken
# before the wait; a version that differs says so.
_VERSION_THEN = select(_card_then.c.version).where(_card_then.c.id == Card.id).scalar_subquery()
_SEQ_THEN = select(Board.seq).where(Board.id == Card.board_id).scalar_subquery()


_items = ChecklistItem.__table__.c
# The card's checklist as one JSON array in position order (text; NULL when empty).
_CHECKLIST_JSON = (
    select(
        cast(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_object(
                        *(part for c in ChecklistItemOut.__struct_fields__ for part in (c, _items[c]))
                    ),
                    _items.position,
                )
            ),
            Text,
        )
    )
    .where(_items.card_id == Card.id)
    .scalar_subquery()
)
_NOBODY = {"item_id": NO_ROW, "user_id": NO_ROW}
_CARD_FOR_CHANGE = hot(_card_read(True).add_columns(_VERSION_THEN, _SEQ_THEN), **_NOBODY)
_CARD_DETAIL_READ = hot(_card_read(False).add_columns(_CHECKLIST_JSON), **_NOBODY)
hot(_board_and_role_stmt(BoardList), **_NOBODY)


class CardForChange(NamedTuple):
    """A card locked for a change (:func:`card_for_change`)."""

    card: Card | None
    role: str | None
    assignee_ids: list[UUID]
    label_ids: list[UUID]
    read_at_seq: int  # the board's seq in the snapshot the relations were read in


async def card_for_change(session: AsyncSession, card_id: UUID, user_id: UUID) -> CardForChange:
    """PostgreSQL only: :func:`item_and_role` with ``for_update`` for a card, and the card's
    assignee ids and label ids read in the same statement.

    A change needs the card as it was (its event and a 409's body show it whole); reading the
    relations here saves a round trip on every card change. They are the committed relations of
    the locked version of the card: when the lock was waited for (another change of the card
    committed after the statement's snapshot), the statement runs again, now holding the lock, with
    a snapshot that has that change. ``read_at_seq`` is the board's seq in the relations' snapshot:
    a change whose event gets ``read_at_seq + 1`` knows no other change of the board came between.
    """
    params = {"item_id": card_id, "user_id": user_id}
    for _ in range(2):
        row = (await session.execute(_CARD_FOR_CHANGE, params)).first()
        if row is None:
            return CardForChange(None, None, [], [], 0)
        card, assignees, labels, role, version_then, seq_then = row
        if version_then == card.version:
            break
    return CardForChange(card, role, list(assignees or ()), list(labels or ()), int(seq_then or 0))


async def card_detail_and_role(
    session: AsyncSession, card_id: UUID, user_id: UUID
) -> tuple[Card | None, str | None, list[UUID], list[UUID], list[ChecklistItemOut]]:
    """PostgreSQL only: a card with its assignee ids, label ids and checklist, and the caller's
    role, in one statement (``GET /cards/{id}``): ``(card, role, assignees, labels, checklist)``."""
    row = (await session.execute(_CARD_DETAIL_READ, {"item_id": card_id, "user_id": user_id})).first()
    if row is None:
        return None, None, [], [], []
    items = _checklist_decoder.decode(row[4]) if row[4] else []
    for item in items:  # PostgreSQL renders timestamps in the session's zone; the API's are UTC
        item.created_at = item.created_at.astimezone(UTC)
        item.updated_at = item.updated_at.astimezone(UTC)
    return row[0], row[3], list(row[1] or ()), list(row[2] or ()), items


_checklist_decoder = msgspec.json.Decoder(list[ChecklistItemOut])


async def board_role(session: AsyncSession, board_id: UUID, user_id: UUID) -> str | None:
    """The user's role on the board ("owner" | "admin" | "member" | "observer"), or None."""
    return (await session.execute(_ROLE, {"board_id": board_id, "user_id": user_id})).scalar_one_or_none()


async def board_and_role_of(
    session: AsyncSession, model: type[BoardList] | type[Card], item_id: UUID, user_id: UUID
) -> tuple[UUID | None, str | None]:
    """``(board of the list or card, the user's role there)`` in one query; ``None`` for what is
    missing (no such item; not a member)."""
    row = (
        await session.execute(_board_and_role_stmt(model), {"item_id": item_id, "user_id": user_id})
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]
