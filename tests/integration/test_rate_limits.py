"""Rate limits: strict on login, register, forgot and reset; generous elsewhere; shared through Redis."""

from __future__ import annotations

import uuid

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import load_settings
from tests.conftest import base_env

STRICT = [
    ("/api/v1/auth/login", {"login": "nobody", "password": "whatever it is"}),
    ("/api/v1/auth/register", {"email": "x", "username": "x", "password": "x"}),
    ("/api/v1/auth/password/forgot", {"email": "nobody@example.test"}),
    ("/api/v1/auth/password/reset", {"token": "nope", "password": "whatever it is"}),
]


def _env(tmp_path, run_id, **extra):
    env = base_env(tmp_path, run_id)
    env.update(AUTH_RATE_LIMIT_PER_MINUTE="3", RATE_LIMIT_PER_MINUTE="100000", **extra)
    return env


@pytest.mark.parametrize(("path", "body"), STRICT, ids=[p for p, _ in STRICT])
async def test_strict_routes_answer_429_with_retry_after(tmp_path, run_id, path, body):
    app = create_app(load_settings(_env(tmp_path, run_id)))
    async with AsyncTestClient(app=app) as client:
        for _ in range(3):
            response = await client.post(path, json=body)
            assert response.status_code != 429
        limited = await client.post(path, json=body)
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(limited.headers["retry-after"]) <= 120
        assert limited.headers["ratelimit-remaining"] == "0"
        assert limited.json()["status"] == 429


async def test_strict_limit_leaves_other_routes_alone(tmp_path, run_id):
    app = create_app(load_settings(_env(tmp_path, run_id)))
    async with AsyncTestClient(app=app) as client:
        for _ in range(4):
            await client.post("/api/v1/auth/password/forgot", json={"email": "a@example.test"})
        assert (
            await client.post("/api/v1/auth/password/forgot", json={"email": "a@example.test"})
        ).status_code == 429
        # The other auth routes, the API and operations routes are not counted by the strict limiter.
        for _ in range(10):
            assert (
                await client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
            ).status_code == 401
            assert (await client.get("/api/v1/auth/me")).status_code == 401
            assert (await client.post("/api/v1/auth/verify-email", json={"token": "nope"})).status_code == 422
            assert (await client.get("/health")).status_code == 200


async def test_generous_limit_applies_to_every_api_route(tmp_path, run_id):
    env = _env(tmp_path, run_id)
    env["RATE_LIMIT_PER_MINUTE"] = "5"
    app = create_app(load_settings(env))
    async with AsyncTestClient(app=app) as client:
        statuses = [(await client.get("/api/v1/auth/me")).status_code for _ in range(6)]
        assert statuses[:5] == [401] * 5
        assert statuses[5] == 429
        # health and metrics are never limited
        assert [(await client.get("/health")).status_code for _ in range(8)] == [200] * 8


async def test_two_instances_share_the_count_through_redis(tmp_path, run_id, pg_url, redis_url):
    env = _env(tmp_path, run_id, DATABASE_URL=pg_url, REDIS_URL=redis_url)
    env["REDIS_PREFIX"] = f"cbtest:{run_id}:rl:{uuid.uuid4().hex[:6]}"
    first, second = create_app(load_settings(env)), create_app(load_settings(env))
    body = {"email": "nobody@example.test"}
    async with AsyncTestClient(app=first) as a, AsyncTestClient(app=second) as b:
        assert (await a.post("/api/v1/auth/password/forgot", json=body)).status_code == 202
        assert (await b.post("/api/v1/auth/password/forgot", json=body)).status_code == 202
        assert (await a.post("/api/v1/auth/password/forgot", json=body)).status_code == 202
        limited = await b.post("/api/v1/auth/password/forgot", json=body)
        assert limited.status_code == 429
        assert "retry-after" in limited.headers


async def test_generous_limit_counts_per_session_and_made_up_tokens_share_the_address(tmp_path, run_id):
    from tests.support.factories import make_account

    env = _env(tmp_path, run_id)
    env["RATE_LIMIT_PER_MINUTE"] = "6"
    async with AsyncTestClient(app=create_app(load_settings(env))) as client:
        alice = await make_account(client)  # 2 requests from the address
        statuses = [
            (await client.get("/api/v1/auth/me", headers=alice.headers)).status_code for _ in range(7)
        ]
        assert statuses == [200] * 6 + [429]  # alice's session has its own budget
        bogus = [
            (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer fake{i}"})).status_code
            for i in range(5)
        ]
        assert bogus == [401] * 4 + [429]  # made-up tokens count against the address (2 used already)


async def test_concurrent_requests_on_two_instances_never_pass_the_limit(tmp_path, run_id, pg_url, redis_url):
    """The count is one atomic INCR in Redis: 24 requests at once over two instances, limit 5,
    exactly 5 get through, and the refused ones are not counted against the caller."""
    import asyncio

    env = _env(tmp_path, run_id, DATABASE_URL=pg_url, REDIS_URL=redis_url)
    env["AUTH_RATE_LIMIT_PER_MINUTE"] = "5"
    env["REDIS_PREFIX"] = f"cbtest:{run_id}:rl:{uuid.uuid4().hex[:6]}"
    first, second = create_app(load_settings(env)), create_app(load_settings(env))
    body = {"email": "nobody@example.test"}
    async with AsyncTestClient(app=first) as a, AsyncTestClient(app=second) as b:
        responses = await asyncio.gather(
            *(client.post("/api/v1/auth/password/forgot", json=body) for client in [a, b] * 12)
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * 5 + [429] * 19


async def test_batched_counter_counts_a_callers_first_request_in_redis_and_sends_the_rest_later(
    redis_url, run_id
):
    """server/ratelimit.py, BatchedRedisCounter, on the real Redis: windows are given, so nothing
    here depends on the clock."""
    import asyncio

    from redis.asyncio import Redis

    from server.ratelimit import BatchedRedisCounter, RedisCounter

    prefix = f"cbtest:{run_id}:rlb:{uuid.uuid4().hex[:6]}"
    redis = Redis.from_url(redis_url)
    key = f"{prefix}:rl:caller:100"
    try:
        one = BatchedRedisCounter(RedisCounter(redis, prefix), sync_seconds=3600)
        two = BatchedRedisCounter(RedisCounter(redis, prefix), sync_seconds=3600)
        assert await one.hit("caller", 100) == (1, 0)  # the first: counted in Redis at once
        assert [await one.hit("caller", 100) for _ in range(4)] == [(2, 0), (3, 0), (4, 0), (5, 0)]
        assert int(await redis.get(key)) == 1  # the other four wait for the next send
        assert await two.hit("caller", 100) == (2, 0)  # another instance does not see them yet
        await one.flush()
        assert int(await redis.get(key)) == 6
        assert await two.hit("caller", 100) == (3, 0)  # 2 as last answered + 1 counted here
        await two.flush()  # its answer carries the other instance's count
        assert await two.hit("caller", 100) == (8, 0)
        await two.undo("caller", 100)  # a refused request is taken back before it is sent
        await two.flush()
        assert int(await redis.get(key)) == 7
        assert await one.hit("caller", 101) == (1, 7)  # a new window, the previous one's count

        # Unless told otherwise, what is counted is sent by itself within SYNC_SECONDS.
        three = BatchedRedisCounter(RedisCounter(redis, prefix), sync_seconds=0.05)
        await three.hit("other", 100)
        await three.hit("other", 100)
        async with asyncio.timeout(30):
            while int(await redis.get(f"{prefix}:rl:other:100")) != 2:
                await asyncio.sleep(0.02)
        await three.close()
    finally:
        await redis.aclose()


async def test_generous_limit_is_shared_through_redis(tmp_path, run_id, pg_url, redis_url):
    """On Redis the generous limit is counted in batches; one instance still refuses over it, and
    what one instance counted reaches the others (here: sent when it stops)."""
    env = _env(tmp_path, run_id, DATABASE_URL=pg_url, REDIS_URL=redis_url)
    env["RATE_LIMIT_PER_MINUTE"] = "8"
    env["REDIS_PREFIX"] = f"cbtest:{run_id}:rl:{uuid.uuid4().hex[:6]}"
    first, second = create_app(load_settings(env)), create_app(load_settings(env))
    async with AsyncTestClient(app=second) as b:
        async with AsyncTestClient(app=first) as a:
            first.state.rate_batched.sync_seconds = 3600  # sent only when the app stops
            assert [(await a.get("/api/v1/auth/me")).status_code for _ in range(5)] == [401] * 5
        # The same caller (the client address) on the other instance: 5 counted, 3 left.
        statuses = [(await b.get("/api/v1/auth/me")).status_code for _ in range(4)]
        assert statuses == [401] * 3 + [429]
