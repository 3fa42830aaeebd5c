"""Database engine, sessions and migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from advanced_alchemy.types import GUID
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATE_COMMAND = "corkboard migrate"


class UnmigratedDatabaseError(RuntimeError):
    """The database schema is behind the code; the message names the command that fixes it."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """What autogenerate compares. Full-text search objects are hand-written in migrations (the
    FTS5 table and its shadow tables, expression GIN indexes): autogenerate must not drop them."""
    return not (name or "").startswith(("search_fts", "ix_cards_fts", "ix_comments_fts"))


# PostgreSQL pool. No ``pool_pre_ping``: with asyncpg it costs three round trips on every checkout
# (BEGIN, ``;``, ROLLBACK), a third of a cheap request's statements. Disconnects are handled
# optimistically instead: SQLAlchemy recognises a dropped connection when it is used, invalidates
# the whole pool, and only the requests that held a dead connection fail (500, nothing committed);
# ``pool_recycle`` replaces connections before a proxy's or server's idle timeout cuts them.
# 10 kept, 5 more under a burst. A connection beyond the kept ones is closed when returned, so a
# large overflow under steady load opened a connection (a PostgreSQL backend, and a TLS handshake
# under the default sslmode) for many requests. A small pool also bounds the transactions one
# event loop interleaves: a transaction holding a board's row lock waits for its turn on the loop
# between statements, and with dozens interleaved the lock's hold time (and every waiter's) grew
# with them (the rest benchmark: 37 of 60 backends waiting on board row locks). Requests beyond the
# pool wait for a connection before they begin, holding nothing.
PG_POOL: dict[str, Any] = {"pool_size": 10, "max_overflow": 5, "pool_recycle": 1800, "pool_pre_ping": False}


def engine_config(url: str) -> EngineConfig:
    if url.startswith("sqlite"):
        return EngineConfig(connect_args={"timeout": 10})
    return EngineConfig(**PG_POOL)


def create_engine(url: str) -> AsyncEngine:
    """An engine with the per-dialect settings Corkboard relies on (SQLite: WAL, foreign keys)."""
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, **PG_POOL)


def sqlalchemy_config(url: str) -> SQLAlchemyAsyncConfig:
    return SQLAlchemyAsyncConfig(
        engine_instance=create_engine(url),
        session_config=AsyncSessionConfig(expire_on_commit=False),
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
