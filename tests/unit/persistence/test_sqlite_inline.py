"""SQLite on the loop's thread (persistence/sqlite_inline.py): statements complete without giving
up the loop, a lock held by another process is waited for on a thread while the loop goes on, and
what SQLAlchemy asks of the driver (isolation levels, streamed results) works."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.db import create_engine

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    await engine.dispose()


class Turns:
    """Counts the event loop's turns while it runs."""

    def __init__(self) -> None:
        self.count = 0
        self.task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)


def other_process_holds_the_write_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    return other


async def rows(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT n FROM t ORDER BY rowid"))).scalars())


async def test_statements_complete_without_giving_up_the_loop(engine):
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        turns = Turns()
        await asyncio.sleep(0)
        before = turns.count
        for n in range(20):
            await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == n + 1
        await conn.commit()
        assert turns.count == before  # aiosqlite's thread took several turns per statement
        turns.task.cancel()
    assert await rows(engine) == list(range(20))


async def test_a_lock_held_by_another_process_is_waited_for_on_a_thread_while_the_loop_goes_on(
    engine, tmp_path
):
    other = other_process_holds_the_write_lock(tmp_path / "db.sqlite")
    turns = Turns()

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done()
    assert turns.count > 10  # the loop was not held while the writer waited
    other.commit()
    other.close()
    await writer
    turns.task.cancel()
    assert await rows(engine) == [1, 2]


async def test_a_lock_held_past_the_busy_timeout_fails_as_database_is_locked_and_changes_nothing(tmp_path):
    path = tmp_path / "db.sqlite"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", sqlite_busy_seconds=0.2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    other = other_process_holds_the_write_lock(path)
    with pytest.raises(OperationalError, match="database is locked"):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
    other.commit()
    other.close()
    async with engine.begin() as conn:  # the connection is usable again, and waits no longer
        await conn.execute(text("INSERT INTO t VALUES (3)"))
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 0
    assert await rows(engine) == [1, 3]
    await engine.dispose()


async def test_autocommit_isolation_level_commits_each_statement(engine, tmp_path):
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("INSERT INTO t VALUES (7)"))
        other = sqlite3.connect(tmp_path / "db.sqlite")
        assert other.execute("SELECT n FROM t").fetchall() == [(7,)]  # committed, not pending
        other.close()


async def test_streamed_results_come_in_batches(engine):
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (:n)"), [{"n": n} for n in range(25)])
    async with engine.connect() as conn:
        result = await conn.stream(text("SELECT n FROM t ORDER BY n"))
        got = [row.n async for row in result.yield_per(10)]
    assert got == list(range(25))


async def test_other_errors_are_raised_at_once(engine):
    async with engine.connect() as conn:
        with pytest.raises(OperationalError, match="no such table"):
            await conn.execute(text("SELECT * FROM missing"))
