"""The account path end to end over HTTP, on both backends."""

from __future__ import annotations

from tests.support.factories import PASSWORD, login, make_account, register, unique_name


async def test_register_login_me(client):
    account = await make_account(client)
    me = await client.get("/api/v1/auth/me", headers=account.headers)
    assert me.status_code == 200
    assert me.json()["username"] == account.username
    assert me.json()["email_verified"] is False


async def test_login_accepts_the_oauth2_password_form(client):
    user = await register(client)
    response = await client.post(
        "/api/v1/auth/login", data={"username": user["username"], "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


async def test_wrong_password_and_unknown_user_look_alike(client):
    user = await register(client)
    wrong = await client.post(
        "/api/v1/auth/login", json={"login": user["username"], "password": "nope nope nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"login": unique_name(), "password": "nope nope nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["content-type"].startswith("application/problem+json")


async def test_refresh_rotates_and_reuse_revokes_the_session(client):
    account = await make_account(client)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    new_pair = first.json()
    assert new_pair["refresh_token"] != account.refresh_token
    # The spent token comes back: the whole session is revoked, new tokens included.
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reuse.status_code == 401
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new_pair['access_token']}"})
    assert me.status_code == 401
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert again.status_code == 401


async def test_logout_revokes_access_token_at_once(client):
    account = await make_account(client)
    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401


async def test_validation_errors_name_fields(client):
    response = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "username": "ok_name", "password": "short"}
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"email", "password"}
    # nothing was created: the same username registers fine afterwards
    await register(client, username="ok_name" + unique_name(""))


async def test_read_only_personal_token_cannot_write(client):
    account = await make_account(client)
    created = await client.post(
        "/api/v1/auth/tokens", json={"name": "bot", "scopes": ["read"]}, headers=account.headers
    )
    assert created.status_code == 201
    token = created.json()["token"]
    bot = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/auth/me", headers=bot)).status_code == 200
    denied = await client.post("/api/v1/auth/logout", headers=bot)
    assert denied.status_code == 403
    listed = await client.get("/api/v1/auth/tokens", headers=account.headers)
    assert "token" not in listed.json()["items"][0]


async def test_problem_details_for_unknown_route(client):
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["status"] == 404


async def test_login_after_password_change_uses_new_password(client):
    account = await make_account(client)
    changed = await client.post(
        "/api/v1/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 42"},
        headers=account.headers,
    )
    assert changed.status_code == 204
    await login(client, account.username, "a brand new passphrase 42")
