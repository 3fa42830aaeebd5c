"""The event log's invariants at the persistence level, on both backends (real PostgreSQL included)."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
from sqlalchemy.ext.asyncio import async_sessionmaker

from persistence import eventlog
from persistence.access import board_role
from persistence.events import RecordingSink
from persistence.models import Board, BoardEvent, BoardMember
from persistence.outbox import SINK_KEY
from tests.support.factories import make_account


async def _board(sessions: async_sessionmaker, owner_id: uuid.UUID) -> uuid.UUID:
    async with sessions() as s:
        board = Board(name="log", description="")
        s.add(board)
        await s.flush()
        s.add(BoardMember(board_id=board.id, user_id=owner_id, role="owner"))
        await s.commit()
        return board.id


async def test_concurrent_writers_get_gapless_unique_seqs(client, db_engine):
    owner = await make_account(client)
    sink = RecordingSink()
    sessions = async_sessionmaker(db_engine, expire_on_commit=False, info={SINK_KEY: sink})
    board_id = await _board(sessions, uuid.UUID(owner.id))
    assert await _role(sessions, board_id, uuid.UUID(owner.id)) == "owner"

    async def writer(n: int) -> None:
        for i in range(10):
            async with sessions() as s:
                await eventlog.append_event(s, board_id, "board.updated", None, {"writer": n, "i": i})
                await s.commit()

    await asyncio.gather(*(writer(n) for n in range(20)))
    async with sessions() as s:
        events = await eventlog.events_after(s, board_id, 0, 1000)
        assert [e.seq for e in events] == list(range(1, 201))
        assert await eventlog.current_seq(s, board_id) == 200
        seq, body = await eventlog.board_snapshot(s, board_id)
    assert seq == 200
    assert msgspec.json.decode(body)["seq"] == 200
    assert sorted(e.seq for e in sink.events) == list(range(1, 201))
    pairs = {(msgspec.json.decode(e.data)["writer"], msgspec.json.decode(e.data)["i"]) for e in events}
    assert len(pairs) == 200


async def test_rolled_back_change_hands_nothing_and_keeps_no_number(client, db_engine):
    owner = await make_account(client)
    sink = RecordingSink()
    sessions = async_sessionmaker(db_engine, expire_on_commit=False, info={SINK_KEY: sink})
    board_id = await _board(sessions, uuid.UUID(owner.id))
    async with sessions() as s:
        await eventlog.append_event(s, board_id, "board.updated", None, {"n": 1})
        await s.rollback()
    assert sink.events == []
    async with sessions() as s:
        event = await eventlog.append_event(s, board_id, "board.updated", None, {"n": 2})
        assert sink.events == []  # not before commit
        await s.commit()
    assert event.seq == 1
    assert [e.seq for e in sink.events] == [1]
    async with sessions() as s:
        rows = (await s.execute(BoardEvent.__table__.select().where(BoardEvent.board_id == board_id))).all()
    assert len(rows) == 1


async def _role(sessions: async_sessionmaker, board_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    async with sessions() as s:
        return await board_role(s, board_id, user_id)


async def test_board_snapshot_reads_one_snapshot(client, db_engine, monkeypatch):
    """A change committed while the snapshot is being read is not half in it."""
    from sqlalchemy import select

    owner = await make_account(client)
    sessions = async_sessionmaker(db_engine, expire_on_commit=False, info={SINK_KEY: RecordingSink()})
    board_id = await _board(sessions, uuid.UUID(owner.id))
    original = eventlog.load_board_detail
    seen: dict[str, int] = {}

    async def interleaved(snap, bid):
        seen["first"] = (await snap.execute(select(Board.seq).where(Board.id == bid))).scalar_one()
        async with sessions() as other:
            await eventlog.append_event(other, bid, "board.updated", None, {"n": 1})
            board = await other.get(Board, bid)
            board.name = "changed meanwhile"
            await other.commit()
        return await original(snap, bid)

    monkeypatch.setattr(eventlog, "load_board_detail", interleaved)
    async with sessions() as s:
        seq, body = await eventlog.board_snapshot(s, board_id)
    monkeypatch.setattr(eventlog, "load_board_detail", original)
    detail = msgspec.json.decode(body)
    assert seq == seen["first"] == 0
    assert detail["name"] == "log"
    async with sessions() as s:
        seq, body = await eventlog.board_snapshot(s, board_id)
    assert seq == 1
    assert msgspec.json.decode(body)["name"] == "changed meanwhile"
