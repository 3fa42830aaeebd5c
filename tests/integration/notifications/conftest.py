"""Fixtures for notifications, jobs and webhooks: an app per backend wired to a real SMTP server,
with short retry delays; every test runs on SQLite (in-process jobs) and PostgreSQL + Redis (SAQ)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.settings import Settings, load_settings
from tests.conftest import BACKENDS, base_env
from tests.support.smtp import MailHandler, SmtpServer


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server: SmtpServer) -> MailHandler:
    return smtp_server.handler


@pytest.fixture(scope="session", params=BACKENDS)
def notify_env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    run_id: str,
    smtp_server: SmtpServer,
) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("notify-" + request.param)
    env = base_env(tmp, run_id)
    env.update(
        {
            "SMTP_URL": smtp_server.url,
            "JOB_RETRY_DELAY": "0.2",
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "WEBHOOK_MAX_FAILURES": "3",
            "WEBHOOK_TIMEOUT": "3",
            "REDIS_PREFIX": f"cbtest:{run_id}:n",
        }
    )
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


@pytest.fixture(scope="session")
def notify_settings(notify_env: dict[str, str]) -> Settings:
    return load_settings(notify_env)


@pytest.fixture(scope="session")
def napp(notify_settings: Settings) -> Litestar:
    from server.app import create_app

    return create_app(notify_settings)


@pytest.fixture(scope="session")
async def nclient(napp: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=napp) as c:
        yield c


@pytest.fixture
def jobs(napp: Litestar) -> Any:
    return napp.state.jobs


async def in_app(client: AsyncTestClient[Litestar], fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Await ``fn(*args, **kwargs)`` on the app's own event loop (the test client runs the app in a
    portal thread; its engine and job runner belong to that loop)."""
    import asyncio
    import functools

    return await asyncio.to_thread(client.blocking_portal.call, functools.partial(fn, *args, **kwargs))
