"""Input that used to answer 500 (or, with NUL, was stored on SQLite only) answers a 4xx problem
and changes nothing (issue 18 item 13), on both databases."""

from __future__ import annotations

import jwt

from tests.support.factories import bearer, make_account

DEEP = '{"a":' * 1000 + "1" + "}" * 1000


async def test_deeply_nested_json_is_a_400_problem(client):
    for path in ("/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/boards"):
        response = await client.post(path, content=DEEP, headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_nul_characters_are_a_400_problem_and_change_nothing(client):
    me = await make_account(client)
    auth = bearer(me.access_token)
    created = await client.post("/api/v1/boards", json={"name": "bad\x00name"}, headers=auth)
    assert created.status_code == 400, created.text
    assert created.headers["content-type"].startswith("application/problem+json")
    boards = await client.get("/api/v1/boards", headers=auth)
    assert boards.json()["items"] == []
    board = (await client.post("/api/v1/boards", json={"name": "ok"}, headers=auth)).json()
    renamed = await client.patch(
        f"/api/v1/boards/{board['id']}", json={"name": "x\x00", "version": board["version"]}, headers=auth
    )
    assert renamed.status_code == 400, renamed.text
    found = await client.get("/api/v1/search", params={"q": "a\x00b"}, headers=auth)
    assert found.status_code == 400, found.text
    assert (await client.get(f"/api/v1/boards/{board['id']}", headers=auth)).json()["name"] == "ok"


async def test_nul_in_a_form_login_is_a_400_problem(client):
    response = await client.post(
        "/api/v1/auth/login",
        content=b"username=a%00b&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_token_with_an_enormous_exp_is_a_401(client, settings):
    me = await make_account(client)
    claims = jwt.decode(me.access_token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "exp": 10**20}, settings.secret_key, algorithm="HS256")
    response = await client.get("/api/v1/auth/me", headers=bearer(forged))
    assert response.status_code == 401, response.text


async def test_an_after_seq_past_the_column_is_a_422(client):
    me = await make_account(client)
    auth = bearer(me.access_token)
    board = (await client.post("/api/v1/boards", json={"name": "b"}, headers=auth)).json()
    for params in ({"after_seq": 2**31}, {"after_seq": 10**30}, {"cursor": "99999999999"}):
        response = await client.get(f"/api/v1/boards/{board['id']}/events", params=params, headers=auth)
        assert response.status_code in (400, 422), (params, response.text)
    last = {"after_seq": 2**31 - 1}
    ok = await client.get(f"/api/v1/boards/{board['id']}/events", params=last, headers=auth)
    assert ok.status_code == 200
    assert ok.json()["items"] == []
