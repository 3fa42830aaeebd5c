"""Fixtures shared by every layer: settings per backend, an app, an HTTP client, live servers.

Every test that takes ``client`` runs twice: on the embedded default (SQLite, in-process broker)
and on the real PostgreSQL + Redis. Each test session gets its own PostgreSQL database and its own
Redis key prefix, so parallel runs never meet.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.settings import Settings, load_settings
from tests.support import services
from tests.support.live import LiveServer

os.environ.setdefault("LOG_LEVEL", "WARNING")
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    services.require_postgres()
    url = services.create_database()
    from persistence.db import upgrade

    upgrade(url)
    yield url
    services.drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    services.require_redis()
    return services.redis_url()


def base_env(tmp: Path, run_id: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp),
        "SECRET_KEY": "test-secret-key-" + run_id + "-0123456789abcdef",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "100000",
        "AUTH_RATE_LIMIT_PER_MINUTE": "100000",
        "MAIL_PER_ADDRESS_PER_HOUR": "100000",
        "MAIL_PER_ACCOUNT_PER_HOUR": "100000",
        "EMAIL_LOOKUPS_PER_HOUR": "100000",
        "PASSWORD_MIN_LENGTH": "10",
        # cheap argon2id for tests (production keeps the library's defaults)
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8192",
        "PASSWORD_HASH_PARALLELISM": "1",
        "REDIS_PREFIX": f"cbtest:{run_id}",
        # Many apps and live servers are up at once in a run, each warming its pool: keep the
        # shared PostgreSQL under its connection limit (a server's own default is 10).
        "DB_POOL_SIZE": "4",
    }


@pytest.fixture(scope="session", params=BACKENDS)
def backend_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, run_id: str
) -> dict[str, str]:
    """Environment for one backend: SQLite file + in-process broker, or PostgreSQL + Redis."""
    tmp = tmp_path_factory.mktemp(request.param)
    env = base_env(tmp, run_id)
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


@pytest.fixture(scope="session")
def settings(backend_env: dict[str, str]) -> Settings:
    return load_settings(backend_env)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    from server.app import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as c:
        yield c


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start real ``corkboard serve`` processes; stopped after the test. ``timeout``: how long one
    may take to answer ``/health`` (generous: a shared, busy machine starts them slowly)."""
    started: list[LiveServer] = []

    def start(env: dict[str, str], *, workers: int = 1, timeout: float = 120) -> LiveServer:
        server = LiveServer(env, workers=workers, log_path=tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server.start(timeout)

    yield start
    for server in started:
        server.stop()
