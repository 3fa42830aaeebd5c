"""Who may see a board: the reads the REST layer and the socket layer both authorize with."""

from __future__ import annotations

from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import BoardList, BoardMember, Card, card_assignees, card_labels

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


_CARD_READ = {for_update: _card_read(for_update) for for_update in (False, True)}


async def card_and_role(
    session: AsyncSession, card_id: UUID, user_id: UUID, *, for_update: bool = False
) -> tuple[Card | None, str | None, list[UUID], list[UUID]]:
    """PostgreSQL only: :func:`item_and_role` for a card, with the card's assignee ids and label ids
    read in the same statement: ``(card, role, assignees, labels)``.

    A change needs the card as it was (its event and a 412's body show it whole), and a read shows
    it whole: reading the relations here saves a round trip on either.
    """
    row = (await session.execute(_CARD_READ[for_update], {"item_id": card_id, "user_id": user_id})).first()
    if row is None:
        return None, None, [], []
    return row[0], row[3], list(row[1] or ()), list(row[2] or ())


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
