"""Every way an auth flow can fail, over HTTP on both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.auth.tokens import issue_access_token
from server.settings import load_settings
from tests.conftest import base_env
from tests.support.factories import PASSWORD, bearer, login, make_account, register, unique_name


async def _current_session_id(client, account) -> str:
    sessions = (await client.get("/api/v1/auth/sessions", headers=account.headers)).json()["items"]
    return next(s["id"] for s in sessions if s["current"])


async def test_missing_malformed_and_forged_tokens_are_401(client, settings):
    account = await make_account(client)
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    for header in ("Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer cbp_unknown"):
        response = await client.get("/api/v1/auth/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"].startswith("application/problem+json")
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    forged = jwt.encode(claims, "some-other-key-0123456789abcdef0123456789", algorithm="HS256")
    assert (await client.get("/api/v1/auth/me", headers=bearer(forged))).status_code == 401
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert (await client.get("/api/v1/auth/me", headers=bearer(unsigned))).status_code == 401


async def test_expired_access_token_is_401_but_refresh_still_works(client, settings):
    account = await make_account(client)
    session_id = await _current_session_id(client, account)
    expired, _ = issue_access_token(settings.secret_key, uuid.UUID(account.id), uuid.UUID(session_id), -10)
    response = await client.get("/api/v1/auth/me", headers=bearer(expired))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    # the same claims, not expired, are accepted: the failure above was the expiry
    fresh, _ = issue_access_token(settings.secret_key, uuid.UUID(account.id), uuid.UUID(session_id), 60)
    assert (await client.get("/api/v1/auth/me", headers=bearer(fresh))).status_code == 200
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refreshed.status_code == 200


async def test_a_token_for_another_users_session_is_refused(client, settings):
    alice, bob = await make_account(client), await make_account(client)
    bobs_session = await _current_session_id(client, bob)
    mixed, _ = issue_access_token(settings.secret_key, uuid.UUID(alice.id), uuid.UUID(bobs_session), 60)
    assert (await client.get("/api/v1/auth/me", headers=bearer(mixed))).status_code == 401


async def test_refresh_failures(client):
    account = await make_account(client)
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": "cbr_nope"})).status_code == 401
    assert (await client.post("/api/v1/auth/refresh", json={})).status_code in (400, 422)
    # an access token is not a refresh token
    misuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.access_token[:200]})
    assert misuse.status_code in (401, 422)
    # after logout the refresh token is dead too
    await client.post("/api/v1/auth/logout", headers=account.headers)
    dead = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert dead.status_code == 401


async def test_sessions_list_marks_current_and_revoking_one_ends_it(client):
    first = await make_account(client)
    second_tokens = await login(client, first.username)
    second = bearer(second_tokens["access_token"])
    listed = (await client.get("/api/v1/auth/sessions", headers=first.headers)).json()["items"]
    assert len(listed) == 2
    assert [s["current"] for s in listed].count(True) == 1
    other_id = next(s["id"] for s in listed if not s["current"])
    assert (
        await client.delete(f"/api/v1/auth/sessions/{other_id}", headers=first.headers)
    ).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=second)).status_code == 401
    dead = await client.post("/api/v1/auth/refresh", json={"refresh_token": second_tokens["refresh_token"]})
    assert dead.status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=first.headers)).status_code == 200
    assert (
        await client.delete(f"/api/v1/auth/sessions/{other_id}", headers=first.headers)
    ).status_code == 404
    # somebody else's session looks like no session at all
    stranger = await make_account(client)
    mine = await _current_session_id(client, first)
    assert (await client.delete(f"/api/v1/auth/sessions/{mine}", headers=stranger.headers)).status_code == 404
    assert (await client.get("/api/v1/auth/me", headers=first.headers)).status_code == 200


async def test_logout_all_ends_every_session(client):
    account = await make_account(client)
    other = await login(client, account.username)
    out = await client.post("/api/v1/auth/logout", json={"all": True}, headers=account.headers)
    assert out.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))).status_code == 401


async def test_logout_ends_only_this_session(client):
    account = await make_account(client)
    other = await login(client, account.username)
    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_change_password_keeps_this_session_and_ends_the_others(client):
    account = await make_account(client)
    other = await login(client, account.username)
    wrong = await client.post(
        "/api/v1/auth/password/change",
        json={"current_password": "not the password", "new_password": "a new passphrase 77"},
        headers=account.headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "current_password"
    weak = await client.post(
        "/api/v1/auth/password/change",
        json={"current_password": PASSWORD, "new_password": account.username + "123"},
        headers=account.headers,
    )
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "new_password"
    assert (await client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))).status_code == 200
    changed = await client.post(
        "/api/v1/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "a new passphrase 77"},
        headers=account.headers,
    )
    assert changed.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))).status_code == 401
    dead = await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert dead.status_code == 401
    old = await client.post("/api/v1/auth/login", json={"login": account.username, "password": PASSWORD})
    assert old.status_code == 401


async def _all_pages(client, url, headers, limit):
    items, cursor, pages = [], None, 0
    while pages < 20:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        items.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
    raise AssertionError("next_cursor never ends")


async def test_sessions_and_tokens_are_collections(client):
    account = await make_account(client)
    for _ in range(2):
        await login(client, account.username)
    made = []
    for name in ("a", "b", "c"):
        created = await client.post("/api/v1/auth/tokens", json={"name": name}, headers=account.headers)
        made.append(created.json()["id"])
    sessions, pages = await _all_pages(client, "/api/v1/auth/sessions", account.headers, 2)
    assert (len(sessions), pages) == (3, 2)
    assert len({s["id"] for s in sessions}) == 3
    assert [s["current"] for s in sessions] == [False, False, True]  # newest first; this one is oldest
    tokens, pages = await _all_pages(client, "/api/v1/auth/tokens", account.headers, 2)
    assert [t["id"] for t in tokens] == made[::-1]
    assert pages == 2
    one = (await client.get("/api/v1/auth/tokens", headers=account.headers)).json()
    assert one["next_cursor"] is None
    assert len(one["items"]) == 3
    for url in ("/api/v1/auth/sessions", "/api/v1/auth/tokens"):
        for params in ({"cursor": "not-a-cursor!"}, {"limit": 0}, {"limit": 201}):
            response = await client.get(url, params=params, headers=account.headers)
            assert response.status_code == 422, (url, params, response.text)


async def test_personal_tokens_scopes_revocation_and_expiry(client):
    account = await make_account(client)
    writer = await client.post(
        "/api/v1/auth/tokens", json={"name": "ci", "scopes": ["write"]}, headers=account.headers
    )
    assert writer.status_code == 201
    assert writer.json()["scopes"] == ["read", "write"]  # write implies read
    token = writer.json()["token"]
    assert token.startswith("cbp_")
    pat = bearer(token)
    assert (
        await client.patch("/api/v1/users/me", json={"display_name": "Bot"}, headers=pat)
    ).status_code == 200
    used = (await client.get("/api/v1/auth/tokens", headers=account.headers)).json()["items"]
    assert next(t for t in used if t["id"] == writer.json()["id"])["last_used_at"] is not None
    # a token cannot mint tokens
    minted = await client.post("/api/v1/auth/tokens", json={"name": "x"}, headers=pat)
    assert minted.status_code == 422
    # read scope: reads work, writes are 403 and change nothing
    reader = await client.post("/api/v1/auth/tokens", json={"name": "ro"}, headers=account.headers)
    ro = bearer(reader.json()["token"])
    assert reader.json()["scopes"] == ["read"]
    assert (await client.get("/api/v1/users/me", headers=ro)).status_code == 200
    denied = await client.patch("/api/v1/users/me", json={"display_name": "Nope"}, headers=ro)
    assert denied.status_code == 403
    assert (await client.get("/api/v1/users/me", headers=ro)).json()["display_name"] == "Bot"
    bad_scope = await client.post(
        "/api/v1/auth/tokens", json={"name": "x", "scopes": ["admin"]}, headers=account.headers
    )
    assert bad_scope.status_code in (400, 422)
    # revoked: fails at once, gone from the list; revoking twice is 404
    token_id = writer.json()["id"]
    assert (
        await client.delete(f"/api/v1/auth/tokens/{token_id}", headers=account.headers)
    ).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=pat)).status_code == 401
    listed = (await client.get("/api/v1/auth/tokens", headers=account.headers)).json()["items"]
    assert token_id not in [t["id"] for t in listed]
    assert (
        await client.delete(f"/api/v1/auth/tokens/{token_id}", headers=account.headers)
    ).status_code == 404
    # somebody else cannot revoke my token
    stranger = await make_account(client)
    ro_id = reader.json()["id"]
    assert (await client.delete(f"/api/v1/auth/tokens/{ro_id}", headers=stranger.headers)).status_code == 404
    assert (await client.get("/api/v1/auth/me", headers=ro)).status_code == 200


async def test_personal_token_expiry(client):
    account = await make_account(client)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await client.post(
        "/api/v1/auth/tokens", json={"name": "old", "expires_at": past}, headers=account.headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "expires_at"
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    created = await client.post(
        "/api/v1/auth/tokens", json={"name": "short", "expires_at": soon}, headers=account.headers
    )
    assert created.status_code == 201
    pat = bearer(created.json()["token"])
    assert (await client.get("/api/v1/auth/me", headers=pat)).status_code == 200
    await asyncio.sleep(1.1)
    assert (await client.get("/api/v1/auth/me", headers=pat)).status_code == 401


async def test_lockout_holds_against_the_right_password_until_it_passes(tmp_path, run_id):
    env = base_env(tmp_path, run_id) | {"LOGIN_MAX_FAILURES": "3", "LOCKOUT_SECONDS": "2"}
    async with AsyncTestClient(app=create_app(load_settings(env))) as client:
        user = await register(client)
        wrong = {"login": user["username"], "password": "wrong wrong wrong"}
        statuses = [(await client.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        locked = await client.post("/api/v1/auth/login", json={"login": user["email"], "password": PASSWORD})
        assert locked.status_code == 423
        assert locked.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(locked.headers["retry-after"]) <= 3
        await asyncio.sleep(2.2)
        await login(client, user["username"])  # the lock has passed
        # a success resets the count: two more failures do not lock
        for _ in range(2):
            assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
        await login(client, user["username"])


async def test_lockout_is_audited(client, settings):
    from tests.support.factories import make_admin

    admin = await make_admin(client, settings)
    user = await register(client)
    for _ in range(settings.login_max_failures):
        await client.post("/api/v1/auth/login", json={"login": user["username"], "password": "wrong wrong"})
    locked = await client.post("/api/v1/auth/login", json={"login": user["username"], "password": PASSWORD})
    assert locked.status_code == 423
    audit = await client.get(
        "/api/v1/audit", params={"subject": user["id"], "action": "login.throttled"}, headers=admin.headers
    )
    assert len(audit.json()["items"]) == 1


async def test_register_does_not_reveal_registered_emails(client):
    user = await register(client)
    again = await client.post(
        "/api/v1/auth/register",
        json={"email": user["email"].upper(), "username": unique_name(), "password": PASSWORD},
    )
    fresh = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_name() + "@example.test", "username": unique_name(), "password": PASSWORD},
    )
    assert again.status_code == fresh.status_code == 201
    assert set(again.json()) == set(fresh.json())
    assert again.json()["email_verified"] is False
    # nothing was made: the new username cannot log in, the owner's account is untouched
    ghost = await client.post(
        "/api/v1/auth/login", json={"login": again.json()["username"], "password": PASSWORD}
    )
    assert ghost.status_code == 401
    await login(client, user["username"])
    # usernames are public, so a taken one is a plain conflict
    taken = await client.post(
        "/api/v1/auth/register",
        json={
            "email": unique_name() + "@example.test",
            "username": user["username"].upper(),
            "password": PASSWORD,
        },
    )
    assert taken.status_code == 409


async def test_unknown_and_inactive_logins_answer_like_a_wrong_password(client):
    user = await register(client)
    answers = [
        await client.post("/api/v1/auth/login", json={"login": user["username"], "password": "wrong wrong"}),
        await client.post("/api/v1/auth/login", json={"login": unique_name(), "password": "wrong wrong"}),
        await client.post(
            "/api/v1/auth/login", json={"login": "nobody@example.test", "password": "wrong wrong"}
        ),
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.json()["detail"] for a in answers}) == 1
    malformed = await client.post("/api/v1/auth/login", json={"login": user["username"]})
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "password"


async def test_unknown_logins_lock_like_real_ones(tmp_path, run_id):
    """Otherwise "423 after N failures" would tell which logins exist."""
    env = base_env(tmp_path, run_id) | {"LOGIN_MAX_FAILURES": "2", "LOCKOUT_SECONDS": "60"}
    async with AsyncTestClient(app=create_app(load_settings(env))) as client:
        user = await register(client)
        real = {"login": user["username"], "password": "wrong wrong wrong"}
        ghost = {"login": unique_name(), "password": "wrong wrong wrong"}
        for body in (real, ghost):
            statuses = [(await client.post("/api/v1/auth/login", json=body)).status_code for _ in range(3)]
            assert statuses == [401, 401, 423], body
        answers = [await client.post("/api/v1/auth/login", json=body) for body in (real, ghost)]
        assert [a.status_code for a in answers] == [423, 423]
        assert answers[0].json()["detail"] == answers[1].json()["detail"]
        assert all(1 <= int(a.headers["retry-after"]) <= 61 for a in answers)


async def test_an_expired_session_refuses_refresh_and_access(tmp_path, run_id):
    env = base_env(tmp_path, run_id) | {"REFRESH_TOKEN_TTL": "1"}
    async with AsyncTestClient(app=create_app(load_settings(env))) as client:
        account = await make_account(client)
        assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 200
        await asyncio.sleep(1.2)  # the session lives one second
        refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
        assert refresh.status_code == 401
        assert "expired" in refresh.json()["detail"]
        assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
        assert (await client.get("/api/v1/auth/sessions", headers=account.headers)).status_code == 401
