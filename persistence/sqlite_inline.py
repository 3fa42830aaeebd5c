"""SQLite on the event loop's own thread: the driver connection Corkboard gives SQLAlchemy's
``sqlite+aiosqlite`` dialect through its ``async_creator`` hook, in place of aiosqlite's.

Why: aiosqlite runs every call on a thread of its own and hands the result back to the loop. SQLAlchemy's
adapter makes four such calls per statement (``cursor``, ``execute``, ``fetchall``, ``close``), and
each one's result waits for the next loop turn. A ``PATCH /cards/{id}`` writes in seven
statements: while a big board's fan-out had the loop (a slice of sockets per turn), each statement
took about 3 ms instead of 0.2 to 0.4 (docs/performance.md, "Session 8"), so
SQLite's single writer, and every change queued behind it, went at the pace of the fan-out's
turns. SQLite itself is a library call of microseconds on a local file; the thread bought no
parallelism either, as the result rows are built under the GIL. Here every call runs at once on
the calling thread, and completes without giving up the loop.

What the thread was for, kept:

- Waiting for another process's write lock (a second worker, a job worker, a CLI command): the
  connection is opened with no busy timeout, so such a call fails at once with ``SQLITE_BUSY``;
  it is then run again on a worker thread with SQLite's busy timeout, and the loop goes on serving
  meanwhile. Writers of this process wait in line on the loop before that
  (:class:`persistence.db.SqliteWriterGate`), so within one process it does not happen.
- The loop is held for as long as one statement runs: microseconds for the statements of the
  request path, milliseconds for a read of a whole large board. SQLite is the embedded default
  for a first run and one instance; PostgreSQL is the store for load (docs/configuration.md).

Only what SQLAlchemy's adapter uses of ``aiosqlite.Connection`` and ``aiosqlite.Cursor`` is here
(sqlalchemy/dialects/sqlite/aiosqlite.py), the calls as coroutines that do not suspend.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

T = TypeVar("T")

BUSY: Final = sqlite3.SQLITE_BUSY


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" (another connection holds the lock)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == BUSY


class InlineCursor:
    """An ``aiosqlite.Cursor`` whose calls run at once (see the module docstring)."""

    __slots__ = ("_conn", "_cursor")

    def __init__(self, conn: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._conn = conn
        self._cursor = cursor

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        await self._conn.call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        await self._conn.call(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return await self._conn.call(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return await self._conn.call(self._cursor.fetchmany, self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return await self._conn.call(self._cursor.fetchall)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid


class _RunNow:
    """SQLAlchemy's adapter sets ``isolation_level`` by queueing ``(future, function)`` on
    aiosqlite's private ``_tx`` queue for its thread; here that runs the function at once."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to whoever awaits the future
            future.set_exception(exc)


class InlineConnection:
    """An ``aiosqlite.Connection`` whose calls run on the calling thread (see the module docstring).

    Args:
        conn: A ``sqlite3`` connection opened with ``timeout=0`` and ``check_same_thread=False``.
        busy_timeout: Seconds a call that found the database locked waits for it, on a thread.
    """

    def __init__(self, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = conn
        self._tx = _RunNow()
        self.busy_timeout = busy_timeout

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` now; if the database is locked, again on a thread, waiting for it."""
        try:
            return function(*args)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        return await asyncio.to_thread(self._patiently, function, *args)

    def _patiently(self, function: Callable[..., T], *args: Any) -> T:
        self._conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        try:
            return function(*args)
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await (await self.cursor()).execute(sql, parameters)

    async def commit(self) -> None:
        await self.call(self._conn.commit)

    async def rollback(self) -> None:
        await self.call(self._conn.rollback)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate, for a connection it will not reuse)."""
        self._conn.close()


async def connect(database: str, *, busy_timeout: float) -> InlineConnection:
    """Open ``database`` for :class:`InlineConnection` (``async_creator`` of ``create_async_engine``)."""
    conn = sqlite3.connect(database, timeout=0, check_same_thread=False)
    return InlineConnection(conn, busy_timeout)
