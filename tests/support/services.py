"""Finding the real PostgreSQL and Redis the tests run against.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` point elsewhere; the defaults are the local services.
In CI (``CI=true``) a missing service fails the run. Elsewhere, when one is not reachable, a
throwaway server is started from local binaries if there are any (``pg_ctl`` / ``redis-server``,
through pytest-postgresql's and pytest-redis's executors) and stopped when the run ends; only
when that is impossible are the tests that need it skipped, with one line that says how to
provide it.
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HOW = (
    "Start PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, or set TEST_DATABASE_URL "
    "(postgresql+asyncpg://…) and TEST_REDIS_URL (redis://…)."
)

# Throwaway servers started by this run: name -> URL (or the reason none could start).
_throwaway: dict[str, str] = {}
_failed: dict[str, str] = {}


def pg_admin_url() -> str:
    return _throwaway.get("postgres") or os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


def redis_url() -> str:
    return _throwaway.get("redis") or os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find(binary: str, *patterns: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]  # the newest version
    return None


def _stop_later(executor: Any, directory: str) -> None:
    def stop() -> None:
        try:
            executor.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)


def _start_postgres() -> str:
    pg_ctl = _find("pg_ctl", "/usr/lib/postgresql/*/bin/pg_ctl", "/usr/local/pgsql/bin/pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("no pg_ctl on PATH")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        raise RuntimeError(f"found {pg_ctl}, but PostgreSQL refuses to run as root")
    from pytest_postgresql.executors import PostgreSQLExecutor

    directory = tempfile.mkdtemp(prefix="corkboard-pg-")
    port = _free_port()
    executor = PostgreSQLExecutor(
        executable=pg_ctl,
        host="127.0.0.1",
        port=port,
        datadir=str(Path(directory) / "data"),
        unixsocketdir=directory,
        logfile=str(Path(directory) / "postgres.log"),
        startparams="-w",
        dbname="postgres",
        user="postgres",
    )
    try:
        executor.start()
    except Exception:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    _stop_later(executor, directory)
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"


def _start_redis() -> str:
    redis_server = _find("redis-server")
    if redis_server is None:
        raise RuntimeError("no redis-server on PATH")
    from pytest_redis.executor import RedisExecutor

    directory = tempfile.mkdtemp(prefix="corkboard-redis-")
    port = _free_port()
    executor = RedisExecutor(
        executable=redis_server,
        databases=16,
        redis_timeout=30,
        loglevel="warning",
        host="127.0.0.1",
        port=port,
        datadir=Path(directory),
    )
    try:
        executor.start()
    except Exception:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    _stop_later(executor, directory)
    return f"redis://127.0.0.1:{port}/0"


_STARTERS = {"PostgreSQL": ("postgres", _start_postgres), "Redis": ("redis", _start_redis)}


def require(name: str, url: str, port: int) -> None:
    if _reachable(url, port):
        return
    message = f"{name} is not reachable at {url.split('@')[-1]}. {HOW}"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    key, start = _STARTERS[name]
    if key not in _failed:
        try:
            _throwaway[key] = start()
            return
        except Exception as exc:
            _failed[key] = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            )
    pytest.skip(f"{message} (No throwaway {name} either: {_failed[key]}.)")


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
