"""Users over HTTP: admin listing, search, pagination, role changes, deactivation, deletion, self service."""

from __future__ import annotations

from tests.support.factories import PASSWORD, bearer, login, make_account, make_admin, register, unique_name


async def test_user_admin_routes_need_an_admin(client):
    account = await make_account(client)
    for path in ("/api/v1/users", f"/api/v1/users/{account.id}", "/api/v1/audit"):
        assert (await client.get(path)).status_code == 401
        denied = await client.get(path, headers=account.headers)
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/problem+json")
    patched = await client.patch(
        f"/api/v1/users/{account.id}", json={"role": "admin"}, headers=account.headers
    )
    assert patched.status_code == 403
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).json()["role"] == "user"


async def test_admin_lists_searches_and_pages_users(client, settings):
    admin = await make_admin(client, settings)
    tag = unique_name("srch")
    names = [f"{tag}{i}" for i in range(3)]
    for name in names:
        await register(client, username=name)
    first = await client.get("/api/v1/users", params={"q": tag.upper(), "limit": 2}, headers=admin.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [u["username"] for u in page["items"]] == names[:2]
    assert page["next_cursor"]
    second = await client.get(
        "/api/v1/users", params={"q": tag, "limit": 2, "cursor": page["next_cursor"]}, headers=admin.headers
    )
    assert [u["username"] for u in second.json()["items"]] == names[2:]
    assert second.json()["next_cursor"] is None
    # search covers email and display name too; `%` is literal, not a wildcard
    by_email = await client.get("/api/v1/users", params={"q": f"{names[1]}@example"}, headers=admin.headers)
    assert [u["username"] for u in by_email.json()["items"]] == [names[1]]
    assert (await client.get("/api/v1/users", params={"q": "%"}, headers=admin.headers)).json()["items"] == []
    # the default page size is 50, the maximum 200
    everyone = await client.get("/api/v1/users", headers=admin.headers)
    assert len(everyone.json()["items"]) <= 50
    too_many = await client.get("/api/v1/users", params={"limit": 201}, headers=admin.headers)
    assert too_many.status_code in (400, 422)
    assert too_many.headers["content-type"].startswith("application/problem+json")
    bad_cursor = await client.get("/api/v1/users", params={"cursor": "nope"}, headers=admin.headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"


async def test_admin_changes_a_role_with_version_checks_and_audit(client, settings):
    admin = await make_admin(client, settings)
    account = await make_account(client)
    got = await client.get(f"/api/v1/users/{account.id}", headers=admin.headers)
    assert got.status_code == 200
    version = got.json()["version"]
    assert got.headers["etag"] == f'"{version}"'
    stale = await client.patch(
        f"/api/v1/users/{account.id}", json={"role": "admin", "version": version + 5}, headers=admin.headers
    )
    assert stale.status_code == 409
    assert stale.json()["current"]["role"] == "user"
    stale_header = await client.patch(
        f"/api/v1/users/{account.id}", json={"role": "admin"}, headers={**admin.headers, "If-Match": '"999"'}
    )
    assert stale_header.status_code == 409
    promoted = await client.patch(
        f"/api/v1/users/{account.id}", json={"role": "admin", "version": version}, headers=admin.headers
    )
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"
    assert promoted.json()["version"] == version + 1
    # the promoted user can now use admin routes
    assert (await client.get("/api/v1/users", headers=account.headers)).status_code == 200
    audit = await client.get(
        "/api/v1/audit", params={"action": "user.role_changed", "actor": admin.id}, headers=admin.headers
    )
    entries = [e for e in audit.json()["items"] if e["subject_id"] == account.id]
    assert entries
    assert entries[0]["data"] == {"from": "user", "to": "admin"}
    bad = await client.patch(f"/api/v1/users/{account.id}", json={"role": "root"}, headers=admin.headers)
    assert bad.status_code in (400, 422)


async def test_deactivation_revokes_sessions_and_tokens_until_reactivated(client, settings):
    admin = await make_admin(client, settings)
    account = await make_account(client)
    pat = await client.post(
        "/api/v1/auth/tokens", json={"name": "bot", "scopes": ["read", "write"]}, headers=account.headers
    )
    pat_headers = bearer(pat.json()["token"])
    off = await client.patch(f"/api/v1/users/{account.id}", json={"is_active": False}, headers=admin.headers)
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=pat_headers)).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401
    denied = await client.post("/api/v1/auth/login", json={"login": account.username, "password": PASSWORD})
    assert denied.status_code == 401
    on = await client.patch(f"/api/v1/users/{account.id}", json={"is_active": True}, headers=admin.headers)
    assert on.json()["is_active"] is True
    fresh = await login(client, account.username)
    assert (await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).status_code == 200
    # tokens revoked by the deactivation stay revoked
    assert (await client.get("/api/v1/auth/me", headers=pat_headers)).status_code == 401
    actions = {
        e["action"]
        for e in (
            await client.get("/api/v1/audit", params={"subject": account.id}, headers=admin.headers)
        ).json()["items"]
    }
    assert {"user.deactivated", "user.reactivated"} <= actions


async def test_admin_deletes_a_user(client, settings):
    admin = await make_admin(client, settings)
    account = await make_account(client)
    assert (await client.delete(f"/api/v1/users/{account.id}", headers=admin.headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=account.headers)).status_code == 401
    assert (await client.get(f"/api/v1/users/{account.id}", headers=admin.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/users/{account.id}", headers=admin.headers)).status_code == 404
    audit = await client.get("/api/v1/audit", params={"action": "user.deleted"}, headers=admin.headers)
    entry = next(e for e in audit.json()["items"] if e["subject_id"] == account.id)
    assert entry["actor_id"] == admin.id
    assert entry["data"]["username"] == account.username
    # the name is free again
    await register(client, username=account.username)


async def test_self_view_and_update(client):
    account = await make_account(client)
    other = await make_account(client)
    me = await client.get("/api/v1/users/me", headers=account.headers)
    assert me.status_code == 200
    assert me.headers["etag"] == f'"{me.json()["version"]}"'
    renamed = await client.patch(
        "/api/v1/users/me",
        json={"display_name": "Ada L.", "username": account.username + "x"},
        headers=account.headers,
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["display_name"] == "Ada L."
    assert renamed.json()["version"] == me.json()["version"] + 1
    taken = await client.patch(
        "/api/v1/users/me", json={"username": other.username.upper()}, headers=account.headers
    )
    assert taken.status_code == 409
    bad = await client.patch(
        "/api/v1/users/me", json={"username": "no spaces allowed"}, headers=account.headers
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "username"
    # role and activity are not the user's to change
    sneaky = await client.patch("/api/v1/users/me", json={"role": "admin"}, headers=account.headers)
    assert sneaky.status_code in (400, 422)
    stale = await client.patch(
        "/api/v1/users/me", json={"display_name": "x"}, headers={**account.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 409
    assert stale.json()["current"]["display_name"] == "Ada L."


async def test_changing_email_needs_the_password_and_unverifies(client):
    account = await make_account(client)
    new_email = unique_name("new") + "@example.test"
    without = await client.patch("/api/v1/users/me", json={"email": new_email}, headers=account.headers)
    assert without.status_code == 422
    assert without.json()["errors"][0]["field"] == "current_password"
    wrong = await client.patch(
        "/api/v1/users/me",
        json={"email": new_email, "current_password": "wrong wrong"},
        headers=account.headers,
    )
    assert wrong.status_code == 422
    changed = await client.patch(
        "/api/v1/users/me",
        json={"email": new_email.upper(), "current_password": PASSWORD},
        headers=account.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["email"] == new_email
    assert changed.json()["email_verified"] is False
    await login(client, new_email)


async def test_self_delete_needs_the_password(client):
    account = await make_account(client)
    wrong = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": "not my password"}, headers=account.headers
    )
    assert wrong.status_code == 422
    assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 200
    gone = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=account.headers
    )
    assert gone.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 401
    relogin = await client.post("/api/v1/auth/login", json={"login": account.username, "password": PASSWORD})
    assert relogin.status_code == 401


async def test_audit_log_filters_and_pages(client, settings):
    admin = await make_admin(client, settings)
    account = await make_account(client)
    for _ in range(3):
        await client.post(
            "/api/v1/auth/login", json={"login": account.username, "password": "wrong password!"}
        )
    failed = await client.get(
        "/api/v1/audit",
        params={"action": "login.failed", "subject": account.id, "limit": 2},
        headers=admin.headers,
    )
    assert failed.status_code == 200
    body = failed.json()
    assert len(body["items"]) == 2
    assert all(e["action"] == "login.failed" for e in body["items"])
    rest = await client.get(
        "/api/v1/audit",
        params={"action": "login.failed", "subject": account.id, "limit": 2, "cursor": body["next_cursor"]},
        headers=admin.headers,
    )
    assert len(rest.json()["items"]) == 1
    assert rest.json()["next_cursor"] is None
    ids = [e["id"] for e in body["items"] + rest.json()["items"]]
    assert len(set(ids)) == 3
    prefixed = await client.get(
        "/api/v1/audit", params={"action": "login.", "subject": account.id}, headers=admin.headers
    )
    assert {e["action"] for e in prefixed.json()["items"]} == {"login.failed", "login.succeeded"}


async def test_the_last_admin_cannot_leave(tmp_path, run_id):
    """On a fresh database with exactly one admin."""
    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from server.settings import load_settings
    from tests.conftest import base_env

    settings = load_settings(base_env(tmp_path, run_id))
    async with AsyncTestClient(app=create_app(settings)) as client:
        admin = await make_admin(client, settings)
        demote = await client.patch(f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=admin.headers)
        assert demote.status_code == 409
        off = await client.patch(
            f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=admin.headers
        )
        assert off.status_code == 409
        leave = await client.request(
            "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=admin.headers
        )
        assert leave.status_code == 409
        second = await make_account(client)
        await client.patch(f"/api/v1/users/{second.id}", json={"role": "admin"}, headers=admin.headers)
        demoted = await client.patch(
            f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=admin.headers
        )
        assert demoted.status_code == 200


async def _board(client, owner, name="b"):
    created = await client.post("/api/v1/boards", json={"name": name}, headers=owner.headers)
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def _add(client, board_id, admin, user, role):
    added = await client.post(
        f"/api/v1/boards/{board_id}/members", json={"user_id": user.id, "role": role}, headers=admin.headers
    )
    assert added.status_code == 201, added.text


async def test_deleting_a_user_hands_their_boards_on_or_deletes_them(client, settings):
    admin = await make_admin(client, settings)
    leaving, first_admin, second_admin, member = [await make_account(client) for _ in range(4)]
    # A board with admins: the longest-standing admin inherits it.
    shared = await _board(client, leaving, "shared")
    await _add(client, shared, leaving, member, "member")
    await _add(client, shared, leaving, first_admin, "admin")
    await _add(client, shared, leaving, second_admin, "admin")
    # A board with no admin member: deleted.
    lonely = await _board(client, leaving, "lonely")
    await _add(client, lonely, leaving, member, "member")
    # A board the leaving user only belongs to: they just leave it.
    other = await _board(client, member, "other")
    await _add(client, other, member, leaving, "member")

    assert (await client.delete(f"/api/v1/users/{leaving.id}", headers=admin.headers)).status_code == 204

    board = (await client.get(f"/api/v1/boards/{shared}", headers=first_admin.headers)).json()
    roles = {m["user_id"]: m["role"] for m in board["members"]}
    assert roles == {first_admin.id: "owner", second_admin.id: "admin", member.id: "member"}
    events = (await client.get(f"/api/v1/boards/{shared}/events", headers=member.headers)).json()["items"]
    assert [e["type"] for e in events[-2:]] == ["member.updated", "member.removed"]
    assert events[-2]["data"]["user_id"] == first_admin.id
    assert events[-1]["data"]["user_id"] == leaving.id
    assert (await client.get(f"/api/v1/boards/{lonely}", headers=member.headers)).status_code == 404
    mine = (await client.get("/api/v1/boards", headers=member.headers)).json()["items"]
    assert lonely not in [b["id"] for b in mine]
    other_members = (await client.get(f"/api/v1/boards/{other}", headers=member.headers)).json()["members"]
    assert [m["user_id"] for m in other_members] == [member.id]
    # the new owner can do what owners do
    renamed = await client.patch(
        f"/api/v1/boards/{shared}", json={"name": "inherited"}, headers=first_admin.headers
    )
    assert renamed.status_code == 200
    audit = await client.get(
        "/api/v1/audit", params={"subject": leaving.id, "action": "user.deleted"}, headers=admin.headers
    )
    data = audit.json()["items"][0]["data"]
    assert data["boards_transferred"] == {shared: first_admin.id}
    assert data["boards_deleted"] == [lonely]


async def test_self_deletion_releases_boards_too(client):
    leaving, member = await make_account(client), await make_account(client)
    board_id = await _board(client, leaving)
    await _add(client, board_id, leaving, member, "admin")
    gone = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=leaving.headers
    )
    assert gone.status_code == 204
    board = (await client.get(f"/api/v1/boards/{board_id}", headers=member.headers)).json()
    assert [(m["user_id"], m["role"]) for m in board["members"]] == [(member.id, "owner")]
