"""Finding the real PostgreSQL and Redis the tests run against.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` point elsewhere; the defaults are the local services.
In CI (``CI=true``) a missing service fails the run; elsewhere the tests that need it are skipped
with one line that says how to provide it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HOW = (
    "Start PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, or set TEST_DATABASE_URL "
    "(postgresql+asyncpg://…) and TEST_REDIS_URL (redis://…)."
)


def pg_admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, url: str, port: int) -> None:
    if _reachable(url, port):
        return
    message = f"{name} is not reachable at {url.split('@')[-1]}. {HOW}"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def require_postgres() -> None:
    require("PostgreSQL", pg_admin_url(), 5432)


def require_redis() -> None:
    require("Redis", redis_url(), 6379)


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _exec(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database() -> str:
    """A fresh database on the test server; returns its SQLAlchemy URL."""
    admin = pg_admin_url()
    name = f"corkboard_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_exec(admin, f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    admin = pg_admin_url()
    name = url.rsplit("/", 1)[1]
    asyncio.run(_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
