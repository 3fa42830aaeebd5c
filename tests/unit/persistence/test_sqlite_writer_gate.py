"""SQLite writers wait in line on the event loop (persistence.db.SqliteWriterGate), not in SQLite's
busy handler: with SQLite's own wait turned off, a second writer still gets its turn."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from persistence import sqlite_inline
from persistence.db import SQLITE_BUSY_SECONDS, SqliteWriterGate, _sqlite_pragmas

pytestmark = pytest.mark.timeout(30)


def engine_without_busy_wait(path: Path) -> AsyncEngine:
    """create_engine's, except that a statement that finds the database locked fails at once."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", async_creator=partial(sqlite_inline.connect, str(path), busy_timeout=0)
    )
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    SqliteWriterGate(timeout=SQLITE_BUSY_SECONDS).attach(engine)
    return engine


async def make_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))


async def hold_write(engine: AsyncEngine, seconds: float, started: asyncio.Event) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        started.set()
        await asyncio.sleep(seconds)


async def test_a_second_writer_waits_its_turn_instead_of_finding_the_database_locked(tmp_path):
    engine = engine_without_busy_wait(tmp_path / "db.sqlite")
    await make_table(engine)
    started = asyncio.Event()
    first = asyncio.create_task(hold_write(engine, 0.3, started))
    await started.wait()
    async with engine.connect() as reader:  # reads do not wait (WAL)
        assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (2)"))
    await first
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM t ORDER BY rowid"))).scalars().all() == [1, 2]
    await engine.dispose()


async def test_a_writer_that_waits_too_long_fails_as_sqlite_would_and_the_line_moves_on(tmp_path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    SqliteWriterGate(timeout=0.1).attach(engine)
    await make_table(engine)
    started = asyncio.Event()
    first = asyncio.create_task(hold_write(engine, 0.5, started))
    await started.wait()
    with pytest.raises(OperationalError, match="database is locked"):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
    await first
    async with engine.begin() as conn:  # nothing was left holding the line
        await conn.execute(text("INSERT INTO t VALUES (3)"))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM t ORDER BY rowid"))).scalars().all() == [1, 3]
    await engine.dispose()
