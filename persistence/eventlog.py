"""The per-board event log: gapless ``seq`` in the change's own transaction, replay and snapshots.

Appending bumps ``boards.seq`` with ``UPDATE … RETURNING``: the row lock it takes serializes the
writers of one board until commit, so numbers rise by exactly one, never repeat, and a rollback
gives its number back together with the change. The event reaches the sink through the outbox,
after commit only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Text, bindparam, cast, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from channels.events import Event
from persistence.boards.read import load_board_detail
from persistence.models import Board, BoardEvent
from persistence.outbox import queue_event

_encoder = msgspec.json.Encoder()


# Built once (it runs on every change): see persistence/access.py.
_ALLOCATE = (
    update(Board)
    .where(Board.id == bindparam("board_id"))
    .values(seq=Board.seq + 1, updated_at=Board.updated_at)
    .returning(Board.seq)
    .execution_options(synchronize_session=False)
)


class BoardNotFoundError(LookupError):
    """The board does not exist (deleted, or never was)."""


async def allocate_seq(session: AsyncSession, board_id: UUID) -> int:
    """Take the board's next event number. Holds the board row lock until the transaction ends.

    Services call this first, so everything they compute afterwards (positions included) is
    computed by one writer of the board at a time.
    """
    seq = await session.scalar(_ALLOCATE, {"board_id": board_id})
    if seq is None:
        raise BoardNotFoundError(str(board_id))
    return int(seq)


def record_event(
    session: AsyncSession,
    *,
    board_id: UUID,
    seq: int,
    type: str,
    actor_id: UUID | None,
    data: Any,
    store: bool = True,
) -> Event:
    """Write the event row (unless ``store`` is false: a deleted board keeps no log) and queue it."""
    raw = _encoder.encode(data)
    at = datetime.now(UTC)
    if store:
        session.add(
            BoardEvent(
                board_id=board_id, seq=seq, type=type, actor_id=actor_id, at=at, data=msgspec.json.decode(raw)
            )
        )
    event = Event(seq=seq, type=type, board_id=board_id, actor_id=actor_id, at=at, data=msgspec.Raw(raw))
    queue_event(session, event)
    return event


async def append_event(
    session: AsyncSession, board_id: UUID, type: str, actor_id: UUID | None, data: Any
) -> Event:
    """Allocate the next seq and record one event (for callers that lock nothing earlier)."""
    seq = await allocate_seq(session, board_id)
    return record_event(session, board_id=board_id, seq=seq, type=type, actor_id=actor_id, data=data)


# Replay reads only the columns an event needs, as plain rows (a Core select: no ORM instance,
# state or identity-map entry per row), and passes the stored JSON text through as ``msgspec.Raw``
# (CAST AS TEXT: no result processor decodes it, on PostgreSQL the server renders the jsonb) instead
# of decoding it into Python objects to encode it again. Loading ORM entities for 1,000 events cost
# ~50 ms of CPU per rejoin and left thousands of tracked objects behind for the collector.
_events = BoardEvent.__table__.c
_EVENTS_AFTER = (
    select(_events.seq, _events.type, _events.actor_id, _events.at, cast(_events.data, Text))
    .where(_events.board_id == bindparam("board_id"), _events.seq > bindparam("after_seq"))
    .order_by(_events.seq)
    .limit(bindparam("limit"))
)


async def events_after(session: AsyncSession, board_id: UUID, after_seq: int, limit: int) -> list[Event]:
    """The board's events with ``seq > after_seq``, ascending, at most ``limit``."""
    params = {"board_id": board_id, "after_seq": after_seq, "limit": limit}
    result = await session.execute(_EVENTS_AFTER, params)
    return [
        Event(seq=seq, type=type_, board_id=board_id, actor_id=actor_id, at=at, data=msgspec.Raw(data))
        for seq, type_, actor_id, at, data in result
    ]


async def current_seq(session: AsyncSession, board_id: UUID) -> int:
    """The number of the board's last event (0 for a new board, or a missing one)."""
    seq = await session.scalar(select(Board.seq).where(Board.id == board_id))
    return int(seq or 0)


def _engine_of(session: AsyncSession) -> AsyncEngine:
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    assert isinstance(bind, AsyncEngine)
    return bind


async def board_snapshot(session: AsyncSession, board_id: UUID) -> tuple[int, bytes]:
    """``(seq, body)``: the ``GET /boards/{id}`` JSON body taken at exactly ``seq``.

    The board is read in one read transaction of its own: REPEATABLE READ (read-only) on
    PostgreSQL; on SQLite an explicit ``BEGIN`` (the driver opens none for reads), which in WAL
    mode pins one snapshot from the first read to the end. Either way every row read belongs to
    the same committed state, and that state's ``seq`` is the one returned.

    Raises:
        BoardNotFoundError: no such board.
    """
    engine = _engine_of(session)
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            await conn.exec_driver_sql("BEGIN")
        try:
            async with AsyncSession(bind=conn, expire_on_commit=False) as snap:
                detail = await load_board_detail(snap, board_id)
        finally:
            await conn.rollback()
    if detail is None:
        raise BoardNotFoundError(str(board_id))
    return detail.seq, _encoder.encode(detail)
