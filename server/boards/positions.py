"""Positions of lists, cards and checklist items: fractional-index keys, compared byte-wise.

A new or moved item gets a key strictly between its neighbours, so one row is written per
create or move. Callers hold the board row lock (taken by ``eventlog.allocate_seq`` before
anything else), so two writers never compute a key for the same gap at once; the unique
``(parent, position)`` constraints are the backstop.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from uuid import UUID

from fractional_indexing import generate_key_between
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import FieldError, ValidationFailed


async def position_between(
    session: AsyncSession,
    model: Any,
    parent: Any,
    parent_id: UUID,
    *,
    before_id: UUID | None,
    after_id: UUID | None,
    moving_id: UUID | None = None,
) -> str:
    """The key for an item placed before ``before_id`` and/or after ``after_id`` under ``parent_id``.

    Neither given: after the last item. ``moving_id`` (the item being moved) is ignored as a
    neighbour. Ids that are not siblings under ``parent_id`` are a 422.
    """
    moving = moving_id is not None
    params: dict[str, Any] = {"parent_id": parent_id, "moving_id": moving_id}

    async def position_of(item_id: UUID, field: str) -> str:
        if item_id == moving_id:
            raise ValidationFailed([FieldError(field, "cannot be the item being moved")])
        found = (
            await session.execute(
                _stmt(model, parent.key, "at", False), {"parent_id": parent_id, "item_id": item_id}
            )
        ).scalar_one_or_none()
        if found is None:
            raise ValidationFailed([FieldError(field, "is not an item of the same list")])
        return str(found)

    async def bound(kind: str, **extra: Any) -> str | None:
        value = (await session.execute(_stmt(model, parent.key, kind, moving), {**params, **extra})).scalar()
        return None if value is None else str(value)

    lower: str | None
    upper: str | None
    if after_id is not None:
        lower = await position_of(after_id, "after_id")
        if before_id is not None:
            upper = await position_of(before_id, "before_id")
            if upper <= lower:
                raise ValidationFailed([FieldError("before_id", "must come after after_id")])
        else:
            upper = await bound("next", pos=lower)
    elif before_id is not None:
        upper = await position_of(before_id, "before_id")
        lower = await bound("previous", pos=upper)
    else:
        lower, upper = await bound("last"), None
    return str(generate_key_between(lower, upper))


@cache
def _stmt(model: Any, parent_key: str, kind: str, moving: bool) -> Any:
    """The sibling queries, built once per (model, parent, kind): they run on every create and
    move, and building a statement costs more CPU than executing it."""
    parent = getattr(model, parent_key)
    if kind == "at":
        return select(model.position).where(
            model.id == bindparam("item_id"), parent == bindparam("parent_id")
        )
    column = func.min(model.position) if kind == "next" else func.max(model.position)
    stmt = select(column).where(parent == bindparam("parent_id"))
    if moving:
        stmt = stmt.where(model.id != bindparam("moving_id"))
    if kind == "next":
        stmt = stmt.where(model.position > bindparam("pos"))
    elif kind == "previous":
        stmt = stmt.where(model.position < bindparam("pos"))
    return stmt
