"""Operations and HTTP hygiene: health, readiness, security headers, CORS, request ids, problem details."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import load_settings
from tests.conftest import base_env
from tests.support.live import free_port


async def test_health_and_ready(client, settings):
    assert (await client.get("/health")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if settings.redis_url else {})
    assert ready.json()["checks"] == expected


async def test_ready_is_503_naming_what_is_down(tmp_path, run_id):
    closed = free_port()  # nothing listens here
    env = base_env(tmp_path, run_id) | {"REDIS_URL": f"redis://127.0.0.1:{closed}/0"}
    app = create_app(load_settings(env))
    # No lifespan: an instance whose Redis went away after it started.
    client = AsyncTestClient(app=app)
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("down")
    assert (await client.get("/health")).status_code == 200


async def test_ready_names_a_dead_database(tmp_path, run_id):
    closed = free_port()
    env = base_env(tmp_path, run_id) | {"DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/x"}
    client = AsyncTestClient(app=create_app(load_settings(env)))
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("down")


async def test_security_headers_on_api_responses(client):
    for response in (await client.get("/api/v1/auth/me"), await client.get("/health")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers  # plain HTTP, no trusted proxy
    docs = await client.get("/schema/swagger")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers  # the docs page loads its scripts
    assert docs.headers["x-content-type-options"] == "nosniff"


async def test_no_hsts_from_a_forwarded_header_of_an_untrusted_peer(tmp_path, run_id):
    # The trusted side (a real proxy peer) is tests/integration/test_proxy_headers.py, on a live server.
    forwarded = {"X-Forwarded-Proto": "https"}
    for env in ({}, {"TRUST_PROXY_HEADERS": "true"}):  # the test client's peer is no trusted proxy
        untrusted = create_app(load_settings(base_env(tmp_path, run_id) | env))
        async with AsyncTestClient(app=untrusted) as client:
            assert "strict-transport-security" not in (await client.get("/health", headers=forwarded)).headers


async def test_cors_from_settings(tmp_path, run_id):
    env = base_env(tmp_path, run_id) | {"CORS_ORIGINS": "https://app.example"}
    async with AsyncTestClient(app=create_app(load_settings(env))) as client:
        preflight = await client.options(
            "/api/v1/auth/me",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        simple = await client.get("/health", headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_no_cors_headers_without_configured_origins(client):
    response = await client.get("/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_request_id_is_echoed_or_made(client):
    given = await client.get("/health", headers={"X-Request-ID": "req-1234567890"})
    assert given.headers["x-request-id"] == "req-1234567890"
    made = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


async def test_errors_are_problem_details_without_internals(client):
    broken = await client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.headers["content-type"].startswith("application/problem+json")
    assert set(broken.json()) >= {"type", "title", "status", "detail"}
    assert "Traceback" not in broken.text
    wrong_method = await client.put("/api/v1/auth/login")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405
    unknown_field = await client.post(
        "/api/v1/auth/register",
        json={"email": "a@example.test", "username": "abc", "password": "x" * 12, "admin": True},
    )
    assert unknown_field.status_code in (400, 422)


async def test_rate_limits_let_requests_through_while_redis_is_down(tmp_path, run_id):
    from tests.support.ownredis import OwnRedis

    own = OwnRedis(tmp_path)
    own.start()
    env = base_env(tmp_path, run_id) | {"REDIS_URL": own.url}
    try:
        async with AsyncTestClient(app=create_app(load_settings(env))) as client:
            own.stop()  # Redis goes away while the instance runs
            login = await client.post(
                "/api/v1/auth/login", json={"login": "nobody", "password": "wrong pw 123"}
            )
            assert login.status_code == 401  # the strict limiter's store failed open
            me = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nope"})
            assert me.status_code == 401  # and so did the generous one
            own.start()
    finally:
        own.stop()


async def test_freeze_startup_heap_freezes_once_started_and_test_apps_do_not(tmp_path, run_id):
    import gc

    settings = load_settings(base_env(tmp_path, run_id))
    assert gc.get_freeze_count() == 0
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/health")).status_code == 200
        assert gc.get_freeze_count() == 0
    try:
        async with AsyncTestClient(app=create_app(settings, freeze_startup_heap=True)) as client:
            assert (await client.get("/health")).status_code == 200
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
