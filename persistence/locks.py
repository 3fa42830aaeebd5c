"""Row locks a board change takes before the board's own lock (PostgreSQL; SQLite has one lock).

The one lock order of every board change, so that no two changes ever wait for each other in a
cycle (see docs/boards.md, "Locks"):

    cards  →  lists  →  the board row  →  the board's labels and members

A change takes the locks it needs in that order and never one earlier in it after a later one.
The rows under a card (comments, checklist items, mentions) are only written by a change that
holds that card's lock (``FOR KEY SHARE`` at least), so they need no place of their own. The
board row's lock is the one that numbers the event (``persistence/eventlog.py``).

Foreign keys lock too: inserting a row that refers to a card or list takes ``FOR KEY SHARE`` on
it when the statement ends. A change that adds under a card or list therefore takes that lock
itself, up front (:func:`lock_card_of`, ``FOR KEY SHARE OF lists`` in the card changes), rather
than let the foreign-key check take it after the board lock.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import BoardList, BoardMember, Card, ChecklistItem, Comment


@cache
def _card_lock_stmt(model: type[Card] | type[Comment] | type[ChecklistItem]) -> Select[Any]:
    entity: Any = model
    stmt = select(Card.board_id, Card.id, BoardMember.role)
    if model is not Card:
        stmt = stmt.select_from(entity).join(Card, entity.card_id == Card.id)
    return (
        stmt.outerjoin(
            BoardMember,
            and_(BoardMember.board_id == Card.board_id, BoardMember.user_id == bindparam("user_id")),
        )
        .where(entity.id == bindparam("item_id"))
        .with_for_update(of=Card, read=True, key_share=True)
    )


async def lock_card_of(
    session: AsyncSession,
    model: type[Card] | type[Comment] | type[ChecklistItem],
    item_id: UUID,
    user_id: UUID,
) -> tuple[UUID | None, UUID | None, str | None]:
    """``(board, card, the user's role on the board)`` of a card, or of a comment's or checklist
    item's card, in one query; ``None`` for what is missing. PostgreSQL: the card stays locked
    ``FOR KEY SHARE`` until the transaction ends, which keeps it (and so everything under it)
    from being deleted while letting changes of the card itself go on."""
    row = (await session.execute(_card_lock_stmt(model), {"item_id": item_id, "user_id": user_id})).first()
    if row is None:
        return None, None, None
    return row[0], row[1], row[2]


@cache
def _rows_lock_stmt(model: type[Card] | type[BoardList], parent_key: str) -> Select[Any]:
    entity: Any = model
    return (
        select(entity.id)
        .where(getattr(entity, parent_key) == bindparam("parent_id"))
        .order_by(entity.id)
        .with_for_update()
    )


async def lock_rows_under(
    session: AsyncSession, model: type[Card] | type[BoardList], parent_key: str, parent_id: UUID
) -> None:
    """Lock ``FOR UPDATE`` (in id order) every card or list whose ``parent_key`` is ``parent_id``:
    a change about to delete them with their parent takes their locks before the board's."""
    await session.execute(_rows_lock_stmt(model, parent_key), {"parent_id": parent_id})
