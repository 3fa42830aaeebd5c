"""The served app: a real `corkboard serve` (uvicorn) process, spoken to over real sockets."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support.factories import PASSWORD, unique_name

pytestmark = pytest.mark.timeout(90)


async def test_auth_flow_through_a_real_server(live_server_factory, backend_env):
    server = live_server_factory(backend_env)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        username = unique_name()
        registered = await http.post(
            "/api/v1/auth/register",
            json={"email": f"{username}@example.test", "username": username, "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        form = await http.post(
            "/api/v1/auth/login", data={"grant_type": "password", "username": username, "password": PASSWORD}
        )
        assert form.status_code == 200
        tokens = form.json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = await http.get("/api/v1/users/me", headers=headers)
        assert me.json()["username"] == username
        assert me.headers["etag"] == '"1"'
        refreshed = await http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        sessions = (await http.get("/api/v1/auth/sessions", headers=headers)).json()["items"]
        assert [s["current"] for s in sessions] == [True]
        reuse = await http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert reuse.status_code == 401
        assert reuse.headers["content-type"].startswith("application/problem+json")
        assert (await http.get("/api/v1/auth/me", headers=headers)).status_code == 401
        wrong = await http.post("/api/v1/auth/login", json={"login": username, "password": "not it at all"})
        assert wrong.status_code == 401
        assert wrong.headers["x-content-type-options"] == "nosniff"
        assert (await http.get("/health/ready")).json()["status"] == "ok"


async def test_openapi_describes_the_auth_routes(live_server_factory, tmp_path, run_id):
    from tests.conftest import base_env

    server = live_server_factory(base_env(tmp_path, run_id))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        spec = (await http.get("/schema/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/me"),
        ("get", "/api/v1/auth/sessions"),
        ("delete", "/api/v1/auth/sessions/{session_id}"),
        ("post", "/api/v1/auth/verify-email"),
        ("post", "/api/v1/auth/verify-email/resend"),
        ("post", "/api/v1/auth/password/forgot"),
        ("post", "/api/v1/auth/password/reset"),
        ("post", "/api/v1/auth/password/change"),
        ("get", "/api/v1/auth/tokens"),
        ("post", "/api/v1/auth/tokens"),
        ("delete", "/api/v1/auth/tokens/{token_id}"),
        ("get", "/api/v1/users"),
        ("get", "/api/v1/users/me"),
        ("patch", "/api/v1/users/me"),
        ("delete", "/api/v1/users/me"),
        ("get", "/api/v1/users/{user_id}"),
        ("patch", "/api/v1/users/{user_id}"),
        ("delete", "/api/v1/users/{user_id}"),
        ("get", "/api/v1/audit"),
    }
    present = {(method, path) for path, item in paths.items() for method in item if method != "parameters"}
    assert expected <= present
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerToken"] == schemes["BearerToken"] | {"type": "http", "scheme": "bearer"}
    assert schemes["OAuth2Password"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login"
    open_routes = {
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/verify-email",
    }
    open_routes |= {"/api/v1/auth/password/forgot", "/api/v1/auth/password/reset"}
    for method, path in expected:
        operation = paths[path][method]
        needs_token = path not in open_routes
        assert ({"BearerToken": []} in (operation.get("security") or [])) == needs_token, (method, path)
        problems = {
            code: response
            for code, response in operation["responses"].items()
            if code.startswith("4") and "application/problem+json" in response.get("content", {})
        }
        assert "400" in problems, (method, path)
        if needs_token:
            assert "401" in problems, (method, path)
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    assert "errors" in problem["properties"]
    register = paths["/api/v1/auth/register"]["post"]
    body_ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"email", "username", "password"} <= set(body["required"])
    assert register["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("UserOut")
    login_body = paths["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    # One body media type (generators mishandle two); the OAuth2 password form is the scheme's tokenUrl.
    assert set(login_body) == {"application/json"}
    assert {"login", "password"} <= set(login_body["application/json"]["schema"]["required"])
    oauth2 = spec["components"]["securitySchemes"]["OAuth2Password"]
    assert oauth2["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login"
    listing = paths["/api/v1/users"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"q", "limit", "cursor"}


async def test_every_log_line_of_a_request_is_json_with_its_request_id(live_server_factory, tmp_path, run_id):
    from tests.conftest import base_env

    server = live_server_factory(base_env(tmp_path, run_id) | {"LOG_LEVEL": "INFO"})
    ids = [f"req-{unique_name('')}-{i}" for i in range(4)]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        username = unique_name()
        await http.post(
            "/api/v1/auth/register",
            json={"email": f"{username}@example.test", "username": username, "password": PASSWORD},
            headers={"X-Request-ID": ids[0]},
        )
        await http.post(
            "/api/v1/auth/login",
            json={"login": username, "password": "wrong!"},
            headers={"X-Request-ID": ids[1]},
        )
        await http.get("/api/v1/nowhere", headers={"X-Request-ID": ids[2]})
        await http.post(
            "/api/v1/auth/password/forgot",
            json={"email": f"{username}@example.test"},
            headers={"X-Request-ID": ids[3]},
        )
        # the reset mail goes out off the request path: wait until it is logged
        for _ in range(50):
            if "Reset your Corkboard password" in server.log_path.read_text():
                break
            await asyncio.sleep(0.1)
    server.stop()
    lines = server.log_path.read_text().splitlines()
    assert lines[0].startswith(f"corkboard: listening on http://127.0.0.1:{server.port}")
    records = [json.loads(line) for line in lines if not line.startswith("corkboard: listening on")]
    start = next(i for i, r in enumerate(records) if r["event"] == "Application startup complete.")
    stop = next(i for i, r in enumerate(records) if r["event"] == "Shutting down")
    during = records[start + 1 : stop]
    serving = [r for r in during if not r["event"].startswith("Uvicorn running on")]
    assert serving
    assert all("request_id" in r for r in serving), [r for r in serving if "request_id" not in r]
    by_id = {i: [r["event"] for r in serving if r["request_id"] == i] for i in ids}
    assert "http.request" in by_id[ids[0]]
    assert "mail.logged" in by_id[ids[0]]  # the verification mail, sent from a background task
    assert by_id[ids[2]] == ["http.request"]  # a 404 is logged too
    assert "mail.logged" in by_id[ids[3]]
    assert all(r["level"] and r["timestamp"] for r in records)
