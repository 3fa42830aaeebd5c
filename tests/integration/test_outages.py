"""A bad day on live servers: the database drops its connections or refuses new ones, Redis goes
away while a session is revoked. Never the shared services: a database of the test's own (its
backends terminated, its connections refused) and a private redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
import websockets

from tests.conftest import base_env
from tests.support import services
from tests.support.live import LiveServer
from tests.support.ownredis import OwnRedis
from tests.support.phx import Phx, account, api, close_code
from tests.support.rest import create_board

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def own_db() -> Iterator[str]:
    """A migrated PostgreSQL database for this test alone (its outage disturbs nobody else)."""
    services.require_postgres()
    url = services.create_database()
    from persistence.db import upgrade

    upgrade(url)
    yield url
    services.drop_database(url)  # WITH (FORCE): whatever ALLOW_CONNECTIONS says


async def admin(*statements: str) -> None:
    """Run statements on an admin connection to the test server."""
    conn = await asyncpg.connect(services.pg_admin_url().replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def drop_connections(url: str) -> None:
    """Terminate every backend of the database and wait until they have exited (their clients
    have then been told: the server closed those connections)."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(services.pg_admin_url().replace("postgresql+asyncpg://", "postgresql://"))
    try:
        pids = [
            r["pid"]
            for r in await conn.fetch(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        ]
        while await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", pids):
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    await asyncio.sleep(0.1)  # the server's loop reads the close before the next request arrives


async def refuse_connections(url: str, refuse: bool) -> None:
    name = url.rsplit("/", 1)[1]
    await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}')
    if refuse:
        await drop_connections(url)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/unavailable")


async def test_dropped_connections_are_replaced_and_an_outage_answers_503_until_the_database_is_back(
    own_db, tmp_path, run_id, live_server_factory
):
    server: LiveServer = live_server_factory({**base_env(tmp_path, run_id), "DATABASE_URL": own_db})
    alice = account(server)
    token = alice["access_token"]
    board = create_board(server, token)
    topic = f"board:{board['id']}"
    phx = await Phx.connect(server.ws_url, token)
    with api(server, token) as c:
        for _ in range(3):  # every kept connection has been used (the pool hands out the last used)
            assert c.get("/boards").status_code == 200

        # The database drops every connection (a restart or failover does): the pool's connections
        # are dead, and the first requests after that find a fresh one, not a 500.
        await drop_connections(own_db)
        assert c.get("/boards").status_code == 200
        assert c.get(f"/boards/{board['id']}").status_code == 200
        assert (await phx.join(topic))[1]["status"] == "ok"

        # Then it refuses connections for a while: 503 with Retry-After, reads and writes alike.
        await refuse_connections(own_db, True)
        assert_unavailable(c.get("/boards"))
        assert_unavailable(c.post("/boards", json={"name": "during the outage"}))
        ready = httpx.get(server.url + "/health/ready", timeout=10)
        assert ready.status_code == 503
        # A new socket is refused with a retryable 503, not the 403 of a bad token ...
        with pytest.raises(websockets.InvalidStatus) as refused:
            await Phx.connect(server.ws_url, token)
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"].isdigit()
        # ... and a join on an open socket says "unavailable", not "unauthorized".
        _, reply = await phx.join(f"card:{board['id']}")
        assert reply == {"status": "error", "response": {"reason": "unavailable"}}

        # The database comes back: the server recovers by itself.
        await refuse_connections(own_db, False)
        assert c.get("/boards").status_code == 200
        created = c.post("/boards", json={"name": "after the outage"})
        assert created.status_code == 201, created.text
        assert httpx.get(server.url + "/health/ready", timeout=10).status_code == 200
    again = await Phx.connect(server.ws_url, token)
    assert (await again.join(topic))[1]["status"] == "ok"
    await again.close()
    await phx.close()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    own = OwnRedis(tmp_path)
    own.start()
    yield own
    own.stop()


def broker_connected(server: LiveServer) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    line = next(ln for ln in text.splitlines() if ln.startswith("corkboard_broker_connected "))
    return float(line.split()[1])


def wait_for_broker(server: LiveServer, value: float) -> None:
    deadline = time.monotonic() + 30
    while broker_connected(server) != value:
        assert time.monotonic() < deadline, f"the broker of {server.url} did not become {value}"
        time.sleep(0.05)


async def test_a_logout_while_redis_is_down_applies_on_the_other_instance(
    pg_url, tmp_path, run_id, own_redis, live_server_factory
):
    env = {**base_env(tmp_path, run_id), "DATABASE_URL": pg_url, "REDIS_URL": own_redis.url}
    a = live_server_factory(env)
    b = live_server_factory(env)
    alice = account(a)
    token = alice["access_token"]
    board = create_board(a, token)
    topic = f"board:{board['id']}"
    on_b = await Phx.connect(b.ws_url, token)
    assert (await on_b.join(topic))[1]["status"] == "ok"
    with api(b, token) as c:  # B remembers alice's session (its session cache)
        assert c.get("/auth/me").status_code == 200
        assert c.get("/auth/me").status_code == 200

    own_redis.stop()
    wait_for_broker(a, 0)
    wait_for_broker(b, 0)
    with api(a, token) as c:
        assert c.post("/auth/logout").status_code == 204  # no message can carry this to B now
    with api(b, token) as c:  # ... yet B does not take the session from its cache
        assert c.get("/auth/me").status_code == 401
    # and B closes the session's socket while Redis is still down (within one maintenance tick).
    assert await close_code(on_b, timeout=20) == 4001

    own_redis.start()
    wait_for_broker(b, 1)
    bob = account(b)
    with api(b, bob["access_token"]) as c:  # and B serves (and caches) sessions again
        assert c.get("/auth/me").status_code == 200
        assert c.get("/auth/me").status_code == 200
