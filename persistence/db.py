"""Database engine, sessions and migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar
from uuid import UUID

import asyncpg
import structlog
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
)
from advanced_alchemy.extensions.litestar._utils import get_aa_scope_state, set_aa_scope_state
from advanced_alchemy.types import GUID
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import Scope
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import await_only

from persistence import sqlite_inline

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATE_COMMAND = "corkboard migrate"


class UnmigratedDatabaseError(RuntimeError):
    """The database schema is behind the code; the message names the command that fixes it."""


SQLITE_BUSY_SECONDS: Final = 10
_WRITES: Final = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """What autogenerate compares. Full-text search objects are hand-written in migrations (the
    FTS5 table and its shadow tables, expression GIN indexes): autogenerate must not drop them."""
    return not (name or "").startswith(("search_fts", "ix_cards_fts", "ix_comments_fts"))


# PostgreSQL pool. No ``pool_pre_ping``: with asyncpg it costs three round trips on every checkout
# (BEGIN, ``;``, ROLLBACK), a third of a cheap request's statements. Instead a checkout looks at
# the connection's transport, without a round trip (:func:`_replace_closed`): a connection the
# server closed (a restart, a failover, ``pg_terminate_backend``) is replaced there by a new one,
# so the first request after the database dropped its connections does not fail. A connection cut
# while a request uses it still fails that request (503, nothing committed: :func:`unavailable`);
# ``pool_recycle`` replaces connections before a proxy's or server's idle timeout cuts them.
# 10 kept, 5 more under a burst. A connection beyond the kept ones is closed when returned, so a
# large overflow under steady load opened a connection (a PostgreSQL backend, and a TLS handshake
# under the default sslmode) for many requests. A small pool also bounds the transactions one
# event loop interleaves: a transaction holding a board's row lock waits for its turn on the loop
# between statements, and with dozens interleaved the lock's hold time (and every waiter's) grew
# with them (the rest benchmark: 37 of 60 backends waiting on board row locks). Requests beyond the
# pool wait for a connection before they begin, holding nothing.
#
# LIFO: a request takes the connection used last, so a light load keeps reusing a few connections
# whose prepared statements and backend caches are warm, instead of cycling through all of them.
PG_POOL: dict[str, Any] = {
    "pool_size": 10,
    "max_overflow": 5,
    "pool_recycle": 1800,
    "pool_pre_ping": False,
    "pool_use_lifo": True,
}

log = structlog.get_logger("corkboard.db")
S = TypeVar("S")

# Statements on the request path, with parameters that match no row, run on each kept connection
# by warm_pool (see there): registered where they are defined, with hot().
_HOT: list[tuple[Any, dict[str, Any]]] = []
NO_ROW = UUID(int=0)  # an id no row has


def hot(statement: S, **params: Any) -> S:
    """Register ``statement`` (built once, on the request path) for :func:`warm_pool`, which runs it
    with ``params`` in a transaction it rolls back: they must match no row, and the statement must
    change nothing when nothing matches. Returns ``statement``."""
    _HOT.append((statement, params))
    return statement


async def warm_pool(engine: AsyncEngine) -> int:
    """Open the pool's kept connections now, all at once, and warm each; how many are open (0 on
    SQLite).

    A process otherwise opens them under its first load: each a PostgreSQL backend to start,
    asyncpg's type setup, and a backend whose caches are cold, while requests queue behind them;
    queued requests held connections longer, the pool grew into its overflow, and two fresh
    workers took 32 connections and stalled for up to 0.7 s (the rest benchmark, one run in three).
    Open but cold was still slow: each connection's first use of each statement is a prepare round
    trip and a planning on a backend with empty caches (a request 2-3 times its usual cost), and
    under 200 req/s the first seconds' requests queued behind that and took about 10 s to drain.
    So each connection also runs the :func:`hot` statements, in a transaction rolled back.
    A connection that cannot be opened or warmed now is not an error here: the pool opens it when
    needed, and the statements are prepared on first use.
    """
    if engine.dialect.name != "postgresql":
        return 0
    size = engine.pool.size()  # type: ignore[attr-defined]

    async def one() -> AsyncConnection:
        conn = await engine.connect()
        try:
            await conn.exec_driver_sql("SELECT 1")
            await conn.commit()
            await _warm(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    opened = await asyncio.gather(*(one() for _ in range(size)), return_exceptions=True)
    conns = [c for c in opened if isinstance(c, AsyncConnection)]
    for conn in conns:
        await conn.close()  # back to the pool, which keeps up to pool_size of them
    return len(conns)


async def _warm(conn: AsyncConnection) -> None:
    """Run every :func:`hot` statement once on ``conn``, then roll back."""
    try:
        for statement, params in _HOT:
            await conn.execute(statement, params)
    except DBAPIError as exc:  # a warm-up is never a reason not to start
        log.warning("db.warm_failed", error=str(exc.orig)[:200])
    finally:
        await conn.rollback()


class SqliteWriterGate:
    """One writing connection at a time on a SQLite engine, the others waiting in line on the loop.

    SQLite has one writer. A second connection's first write would find the database locked and
    wait on a thread (persistence/sqlite_inline.py) in SQLite's busy handler, which polls with
    sleeps of 1 to 100 ms until the first one commits, so concurrent changes went at the pace of
    those sleeps, not of the work. Here a connection's first write statement first waits for an
    ``asyncio.Lock`` (where SQLite would take its write lock), and the connection's return to the
    pool (after its commit or rollback has completed) releases it: the next writer starts at once,
    in turn. Reads never wait (WAL). The engine is async, so its events run inside SQLAlchemy's
    greenlet and may await (``await_only``). A writer that waits longer than SQLite's own busy
    timeout fails as SQLite would ("database is locked").
    """

    def __init__(self, timeout: float) -> None:
        self.lock = asyncio.Lock()
        self.timeout = timeout

    def attach(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before_execute)
        event.listen(sync.pool, "checkin", self._release)
        event.listen(sync.pool, "invalidate", self._release_invalid)

    def _before_execute(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.connection.info  # the pooled connection's, which checkin sees
        if info.get("writer") or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        try:
            await_only(self._acquire())
        except TimeoutError as exc:  # what SQLAlchemy raises when SQLite's own wait runs out
            raise OperationalError(statement, None, sqlite3.OperationalError("database is locked")) from exc
        info["writer"] = True

    async def _acquire(self) -> None:
        async with asyncio.timeout(self.timeout):  # suspends only if the lock is taken
            await self.lock.acquire()

    def _release(self, _dbapi_conn: Any, record: Any) -> None:
        if record is not None and record.info.pop("writer", False):
            self.lock.release()

    def _release_invalid(self, _dbapi_conn: Any, record: Any, _exc: Any) -> None:
        self._release(_dbapi_conn, record)


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection whose transport the server has closed is replaced (the pool
    discards it and opens another, or fails with the reason it cannot). asyncpg notices the close
    as soon as the loop reads it, whether the connection is in use or idle in the pool."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


# How long a client is told to wait (``Retry-After``) while the database is unavailable: about
# the time a restart or failover takes, short enough that a client does not sit out a brief blip.
RETRY_AFTER_SECONDS: Final = 5

# Connection-level SQLSTATE classes and codes: the server is going away, starting, or full.
_UNAVAILABLE_SQLSTATES: Final = ("08", "57P01", "57P02", "57P03", "53300")


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the database cannot be reached or used right now,
    rather than that the request is wrong: a 503 to retry, not a 500.

    That is a dropped connection (SQLAlchemy's ``connection_invalidated``), a DBAPI operational or
    interface error (SQLite's "unable to open database file" and "database is locked" too), a
    connection-level SQLSTATE, the pool's checkout timeout, and what opening a connection raises:
    asyncpg's errors (SQLAlchemy does not wrap them at connect; every statement's it does) and the
    network's ``ConnectionError`` / ``TimeoutError``.
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if _unavailable_one(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _unavailable_one(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return True
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
        return sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    return isinstance(
        exc,
        PoolTimeoutError
        | sqlite3.OperationalError
        | ConnectionError
        | TimeoutError
        | asyncpg.PostgresError
        | asyncpg.InterfaceError,
    )


def create_engine(
    url: str, *, sqlite_busy_seconds: float = SQLITE_BUSY_SECONDS, pool_size: int | None = None
) -> AsyncEngine:
    """An engine with the per-dialect settings Corkboard relies on (SQLite: WAL, foreign keys, the
    calls on the loop's thread, writers in line; ``sqlite_busy_seconds``: how long a SQLite write
    waits for the lock before it fails with "database is locked"; ``pool_size``: PostgreSQL
    connections kept, :data:`PG_POOL`'s when None)."""
    if url.startswith("sqlite"):
        path = make_url(url).database or ""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, async_creator=partial(sqlite_inline.connect, path, busy_timeout=sqlite_busy_seconds)
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        SqliteWriterGate(timeout=sqlite_busy_seconds).attach(engine)
        return engine
    pool = PG_POOL if pool_size is None else {**PG_POOL, "pool_size": pool_size}
    engine = create_async_engine(url, **pool)
    event.listen(engine.sync_engine.pool, "checkout", _replace_closed)
    return engine


# Requests that only read: on PostgreSQL their session runs every statement in autocommit.
READ_METHODS: Final = frozenset({"GET", "HEAD"})
# A read-method route that writes sets this in its handler's ``opt``: it gets a transaction.
WRITES_OPT: Final = "db_writes"


def reads_only(scope: Scope) -> bool:
    """Whether ``scope`` is an HTTP request of a read method to a route that does not write."""
    if scope["type"] != ScopeType.HTTP or scope.get("method") not in READ_METHODS:
        return False
    handler = scope.get("route_handler")
    return not (handler is not None and handler.opt.get(WRITES_OPT))


class CorkboardSQLAlchemyConfig(SQLAlchemyAsyncConfig):
    """advanced-alchemy's config, with one change: on PostgreSQL a read-only request's session
    runs without a transaction (autocommit, :func:`reads_only`).

    A transaction costs a read two more round trips, ``BEGIN`` before its first statement and
    ``ROLLBACK``/``COMMIT`` after its last, each a send to PostgreSQL and a wake-up of its backend:
    for ``GET /cards/{id}`` that was 2 of 5. Under READ COMMITTED, PostgreSQL's default and ours,
    every statement already reads its own fresh snapshot inside a transaction too, so what a read
    sees does not change. What must see one snapshot opens its own REPEATABLE READ transaction
    (``persistence.eventlog.board_snapshot``), and a read route that writes sets ``opt``
    ``{WRITES_OPT: True}``; a single-statement write (a token's ``last_used_at``) commits alone.
    """

    _read_engine: AsyncEngine | None = None

    def provide_session(self, state: State, scope: Scope) -> AsyncSession:
        if get_aa_scope_state(scope, self.session_scope_key) is None and reads_only(scope):
            engine = self.get_engine()
            if engine.dialect.name == "postgresql":
                if self._read_engine is None:
                    self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
                maker = state[self.session_maker_app_state_key]
                set_aa_scope_state(scope, self.session_scope_key, maker(bind=self._read_engine))
        return super().provide_session(state, scope)


# advanced-alchemy's dogpile-cache listener runs after every commit and rollback unless a session
# says otherwise, and asks the engine for its options in a way that builds a new engine proxy each
# time (two per change request, ~4 % of a card move's CPU). Nothing here uses that cache, nor
# FileObject columns (whose listener the config leaves out).
LISTENERS_OFF: dict[str, Any] = {"enable_cache_listener": False, "enable_file_object_listener": False}


def sqlalchemy_config(url: str, *, pool_size: int | None = None) -> SQLAlchemyAsyncConfig:
    return CorkboardSQLAlchemyConfig(
        engine_instance=create_engine(url, pool_size=pool_size),
        session_config=AsyncSessionConfig(expire_on_commit=False, info=dict(LISTENERS_OFF)),
        enable_file_object_listener=False,
        alembic_config=AlembicAsyncConfig(script_location=str(MIGRATIONS_DIR)),
        create_all=False,
    )


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def compare_type(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """Alembic's type comparison, minus one false alarm.

    SQLite stores advanced-alchemy's ``GUID`` as ``BINARY(16)``, which SQLite's reflection reads
    back as ``NUMERIC(16)``: the same column, so not a difference. Everything else: Alembic decides.
    """
    if (
        context.dialect.name == "sqlite"
        and isinstance(metadata_type, GUID)
        and getattr(inspected_type, "precision", None) == 16
    ):
        return False
    return None


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking: call from a thread inside an event loop)."""
    command.upgrade(alembic_config(url), revision)


async def migrate(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


async def ensure_migrated(engine: AsyncEngine, url: str, *, auto: bool) -> None:
    """Migrate when ``auto`` (the embedded default), else refuse to run on an old schema."""
    if auto:
        await migrate(url)
        return
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise UnmigratedDatabaseError(
            f"The database is not migrated (at {current or 'nothing'}, code needs {head}). "
            f"Run `{MIGRATE_COMMAND}` with the same DATABASE_URL, then start again."
        )
