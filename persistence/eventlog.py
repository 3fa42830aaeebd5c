"""The per-board event log: gapless ``seq`` in the change's own transaction, replay and snapshots.

Appending bumps ``boards.seq`` with ``UPDATE … RETURNING``: the row lock it takes serializes the
writers of one board until commit, so numbers rise by exactly one, never repeat, and a rollback
gives its number back together with the change. The event reaches the sink through the outbox,
after commit only.

Two ways to take the number. :func:`allocate_seq` takes it first, so the whole change runs as the
board's only writer (the embedded SQLite default, and changes whose checks span rows of the board).
:func:`append_event_late` takes it last, in the same statement that inserts the event, right
before the commit (PostgreSQL): writers of one board then hold its row lock for one statement and
the commit rather than for the whole request, and rely on row locks of what they change instead.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from sqlalchemy import Table, Text, bindparam, cast, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from uuid_utils.compat import uuid7

from persistence.boards.read import BoardTag, board_tag, load_board_detail
from persistence.boards.shapes import BoardDetail
from persistence.db import NO_ROW, hot
from persistence.events import Event
from persistence.models import Base, Board, BoardEvent
from persistence.outbox import queue_event, requeue_event

_encoder = msgspec.json.Encoder()


# Built once (it runs on every change): see persistence/access.py.
_ALLOCATE = (
    update(Board)
    .where(Board.id == bindparam("board_id"))
    .values(seq=Board.seq + 1, updated_at=Board.updated_at)
    .returning(Board.seq)
    .execution_options(synchronize_session=False)
)


def _append_late() -> Any:
    """``WITH n AS (UPDATE boards SET seq = seq + 1 … RETURNING seq) INSERT INTO board_events …
    SELECT … FROM n RETURNING seq``: number and store the event in one round trip (PostgreSQL).
    The data goes in as the text already encoded for the socket, cast to JSONB by the server.
    (Parameters are named ``ev_*``: a parameter named after a column of ``boards`` would also be
    taken as a value for that column in the UPDATE.)"""
    boards, events = typing.cast("Table", Board.__table__), typing.cast("Table", BoardEvent.__table__)
    numbered = (
        update(boards)
        .where(boards.c.id == bindparam("ev_board_id"))
        .values(seq=boards.c.seq + 1, updated_at=boards.c.updated_at)
        .returning(boards.c.seq)
        .cte("numbered")
    )
    row = select(
        bindparam("ev_board_id", type_=events.c.board_id.type),
        numbered.c.seq,
        bindparam("ev_type", type_=events.c.type.type),
        bindparam("ev_actor_id", type_=events.c.actor_id.type),
        bindparam("ev_at", type_=events.c.at.type),
        cast(bindparam("ev_data", type_=Text), JSONB),
        bindparam("ev_id", type_=events.c.id.type),
        bindparam("ev_at", type_=events.c.created_at.type),
        bindparam("ev_at", type_=events.c.updated_at.type),
    )
    return (
        insert(events)
        .from_select(
            ["board_id", "seq", "type", "actor_id", "at", "data", "id", "created_at", "updated_at"], row
        )
        .returning(events.c.seq)
    )


_APPEND_LATE = _append_late()


@dataclass(frozen=True, slots=True)
class RowWrite:
    """The change's own row, written by its event's statement (:func:`append_event_late`):
    ``insert`` a new row of ``table`` (``values``: every column), or ``update`` the columns in
    ``values`` of row ``row_id``."""

    kind: Literal["insert", "update"]
    table: str
    values: dict[str, Any]
    row_id: UUID | None = None


@functools.cache
def _append_late_writing(kind: str, table: str, columns: tuple[str, ...]) -> Any:
    """:data:`_APPEND_LATE` with the change's ``INSERT`` or ``UPDATE`` (by ``id``) of one row of
    ``table`` in a ``WITH`` ahead of it, its ``columns`` from parameters ``row_<column>``: the row
    and its event written in one statement. Built once per shape (building costs more than running)."""
    target = Base.metadata.tables[table]
    values = {column: bindparam(f"row_{column}", type_=target.c[column].type) for column in columns}
    if kind == "insert":
        changed = insert(target).values(values).cte("changed")
    else:
        changed = update(target).where(target.c.id == bindparam("row_id")).values(values).cte("changed")
    return _APPEND_LATE.add_cte(changed)


# The event of a change that reads first (no row write), and of a card move, for warm_pool: with
# ids no row has, they number and store nothing.
_NO_EVENT = {
    "ev_board_id": NO_ROW,
    "ev_type": "",
    "ev_actor_id": None,
    "ev_at": datetime(2000, 1, 1, tzinfo=UTC),
    "ev_data": "{}",
    "ev_id": NO_ROW,
}
hot(_APPEND_LATE, **_NO_EVENT)
_MOVE_COLUMNS = {"list_id": NO_ROW, "position": "", "updated_at": _NO_EVENT["ev_at"], "version": 0}
hot(
    _append_late_writing("update", "cards", tuple(sorted(_MOVE_COLUMNS))),
    row_id=NO_ROW,
    **{f"row_{column}": value for column, value in _MOVE_COLUMNS.items()},
    **_NO_EVENT,
)


def new_row_values(row: Any) -> dict[str, Any]:
    """Every column of the new ``row``, with the Python-side defaults a flush would apply (its id,
    timestamps, ``version``), which are set on ``row`` too."""
    values: dict[str, Any] = {}
    for attr in sa_inspect(type(row)).column_attrs:
        column = attr.columns[0]
        value = getattr(row, attr.key)
        if value is None and column.default is not None:
            default: Any = column.default
            value = default.arg(None) if default.is_callable else default.arg if default.is_scalar else None
            setattr(row, attr.key, value)
        values[column.key] = value
    return values


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


async def append_event_late(
    session: AsyncSession,
    *,
    board_id: UUID,
    type: str,
    actor_id: UUID | None,
    data: Any,
    row_write: RowWrite | None = None,
) -> Event:
    """Take the board's next number and store the event in one statement (PostgreSQL only), and
    queue it for after the commit. The board row stays locked until the transaction ends, so the
    caller should commit next. ``row_write``: the change's own row, written by the same
    statement (see ``BoardWork.write_row``).

    Raises:
        BoardNotFoundError: no such board (deleted while the change was made).
    """
    raw = _encoder.encode(data)
    at = datetime.now(UTC)
    params: dict[str, Any] = {
        "ev_board_id": board_id,
        "ev_type": type,
        "ev_actor_id": actor_id,
        "ev_at": at,
        "ev_data": raw.decode(),
        "ev_id": uuid7(),
    }
    stmt = _APPEND_LATE
    if row_write is not None:
        stmt = _append_late_writing(row_write.kind, row_write.table, tuple(sorted(row_write.values)))
        params["row_id"] = row_write.row_id
        params.update({f"row_{column}": value for column, value in row_write.values.items()})
    seq = await session.scalar(stmt, params)
    if seq is None:
        raise BoardNotFoundError(str(board_id))
    event = Event(seq=int(seq), type=type, board_id=board_id, actor_id=actor_id, at=at, data=msgspec.Raw(raw))
    queue_event(session, event)
    return event


_RESTATE = (
    update(BoardEvent)
    .where(BoardEvent.board_id == bindparam("ev_board_id"), BoardEvent.seq == bindparam("ev_seq"))
    .values(data=cast(bindparam("ev_data", type_=Text), JSONB))
    .execution_options(synchronize_session=False)
)


async def restate_event(session: AsyncSession, event: Event, data: Any) -> Event:
    """Replace the ``data`` of ``event``, stored by :func:`append_event_late` in this transaction
    and not yet committed, in the log and in the outbox (PostgreSQL only). For a change that found,
    once numbered, that what its data shows changed meanwhile."""
    raw = _encoder.encode(data)
    await session.execute(
        _RESTATE, {"ev_board_id": event.board_id, "ev_seq": event.seq, "ev_data": raw.decode()}
    )
    restated = msgspec.structs.replace(event, data=msgspec.Raw(raw))
    requeue_event(session, event, restated)
    return restated


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
    detail, _ = await _read_snapshot(session, board_id, tagged=False)
    return detail.seq, _encoder.encode(detail)


async def tagged_board_snapshot(session: AsyncSession, board_id: UUID) -> tuple[BoardTag, bytes]:
    """``(tag, body)``: like :func:`board_snapshot`, with the :class:`BoardTag` of the same
    snapshot (what ``GET /boards/{id}`` derives its ``ETag`` from).

    Raises:
        BoardNotFoundError: no such board.
    """
    detail, tag = await _read_snapshot(session, board_id, tagged=True)
    assert tag is not None
    return tag, _encoder.encode(detail)


async def _read_snapshot(
    session: AsyncSession, board_id: UUID, *, tagged: bool
) -> tuple[BoardDetail, BoardTag | None]:
    engine = _engine_of(session)
    tag = None
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            await conn.exec_driver_sql("BEGIN")
        try:
            async with AsyncSession(bind=conn, expire_on_commit=False) as snap:
                detail = await load_board_detail(snap, board_id)
                if detail is not None and tagged:
                    tag = await board_tag(snap, board_id)
        finally:
            await conn.rollback()
    if detail is None:
        raise BoardNotFoundError(str(board_id))
    return detail, tag
