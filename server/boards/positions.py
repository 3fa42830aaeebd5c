"""Positions of lists, cards and checklist items: fractional-index keys, compared byte-wise.

A new or moved item gets a key strictly between its neighbours, so one row is written per
create or move. Two writers may compute a key for the same gap at once: on the embedded SQLite
default they don't (the board lock is taken first), and on PostgreSQL card keys are *jittered*:
a few random digits are appended to the key, which keeps it in the gap and makes two concurrent
writers' keys differ, so placing cards needs no lock on the list. The unique ``(parent,
position)`` constraints are the backstop: a collision (about one in 200,000 per pair of writers
in one gap at once) rolls the change back, and it is retried.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any
from uuid import UUID

from fractional_indexing import BASE_62_DIGITS, generate_key_between
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
    jitter: bool = False,
) -> str:
    """The key for an item placed before ``before_id`` and/or after ``after_id`` under ``parent_id``.

    Neither given: after the last item. ``moving_id`` (the item being moved) is ignored as a
    neighbour. Ids that are not siblings under ``parent_id`` are a 422, and so is ``before_id``
    not after ``after_id``. Both given and no longer neighbours: right after ``after_id`` (so
    still between the two). ``jitter``: see above.
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
        upper = None if before_id is None else await position_of(before_id, "before_id")
        if upper is not None and upper <= lower:
            raise ValidationFailed([FieldError("before_id", "must come after after_id")])
        # Both given but no longer neighbours (another client dropped an item between them since
        # this one read the list): right after ``after_id``, which is still between the two.
        # Keying between the two themselves would pick that other item's key again.
        following = await bound("next", pos=lower)
        if upper is None or (following is not None and following < upper):
            upper = following
    elif before_id is not None:
        upper = await position_of(before_id, "before_id")
        lower = await bound("previous", pos=upper)
    else:
        return key_after(await bound("last"), jitter=jitter)
    key = str(generate_key_between(lower, upper))
    return jittered(key, upper) if jitter else key


def key_after(last: str | None, *, jitter: bool = False) -> str:
    """The key for an item placed after the last one (``last``: its key; None: no items yet)."""
    key = str(generate_key_between(last, None))
    return jittered(key, None) if jitter else key


def last_position(model: Any, parent_key: str, *, moving: bool = False) -> Any:
    """The last key under ``:parent_id`` (ignoring ``:moving_id`` if ``moving``), as a scalar
    subquery: a read that must be made anyway (the parent's board) brings it along."""
    return _stmt(model, parent_key, "last", moving).scalar_subquery()


JITTER_DIGITS = 3


def jittered(key: str, upper: str | None) -> str:
    """``key`` with random digits appended, still below ``upper`` (it is above the lower bound
    already, being a prefix). The last digit is never ``0``: fractional-index keys may not end
    in the smallest digit. ``key`` itself if no suffix fits (``upper`` extends ``key``)."""
    digits: str = BASE_62_DIGITS
    for _ in range(4):
        suffix = "".join(random.choices(digits, k=JITTER_DIGITS - 1)) + random.choice(digits[1:])
        candidate: str = key + suffix
        if upper is None or candidate < upper:
            return candidate
    return key


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
