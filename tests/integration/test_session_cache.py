"""The session cache (server/auth/sessioncache.py) over HTTP, on both backends: a remembered session
saves the query, and nothing it remembers outlives a revocation or a change to its user."""

from __future__ import annotations

from typing import Any

from server import metrics
from tests.support.factories import login, make_account, make_admin


def hits() -> float:
    return metrics.AUTH_CACHE.labels("hit")._value.get()


async def me(client: Any, headers: dict[str, str]) -> Any:
    return await client.get("/api/v1/auth/me", headers=headers)


async def test_a_remembered_session_is_used_and_refused_after_logout(client):
    account = await make_account(client)
    assert (await me(client, account.headers)).status_code == 200  # read, remembered
    before = hits()
    assert (await me(client, account.headers)).status_code == 200
    assert (await me(client, account.headers)).status_code == 200
    assert hits() == before + 2
    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
    assert (await me(client, account.headers)).status_code == 401


async def test_a_password_change_ends_the_other_remembered_sessions(client):
    account = await make_account(client)
    other = await login(client, account.username)
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert (await me(client, other_headers)).status_code == 200
    changed = await client.post(
        "/api/v1/auth/password/change",
        json={"current_password": account.password, "new_password": "a brand new passphrase"},
        headers=account.headers,
    )
    assert changed.status_code == 204, changed.text
    assert (await me(client, other_headers)).status_code == 401
    assert (await me(client, account.headers)).status_code == 200  # the session that changed it stays


async def test_a_changed_user_is_read_again(client):
    account = await make_account(client)
    assert (await me(client, account.headers)).json()["display_name"] != "Renamed"
    patched = await client.patch(
        "/api/v1/users/me", json={"display_name": "Renamed"}, headers=account.headers
    )
    assert patched.status_code == 200, patched.text
    assert (await me(client, account.headers)).json()["display_name"] == "Renamed"
    # The version the user saw is the one a conditional change is checked against.
    version = patched.json()["version"]
    again = await client.patch(
        "/api/v1/users/me",
        json={"display_name": "Twice"},
        headers={**account.headers, "If-Match": f'"{version}"'},
    )
    assert again.status_code == 200, again.text


async def test_role_changes_and_deactivation_apply_to_a_remembered_session_at_once(client, settings):
    admin = await make_admin(client, settings)
    account = await make_account(client)
    assert (await client.get("/api/v1/users", headers=account.headers)).status_code == 403  # remembered
    promoted = await client.patch(
        f"/api/v1/users/{account.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.status_code == 200, promoted.text
    assert (await client.get("/api/v1/users", headers=account.headers)).status_code == 200
    demoted = await client.patch(f"/api/v1/users/{account.id}", json={"role": "user"}, headers=admin.headers)
    assert demoted.status_code == 200, demoted.text
    assert (await client.get("/api/v1/users", headers=account.headers)).status_code == 403
    off = await client.patch(f"/api/v1/users/{account.id}", json={"is_active": False}, headers=admin.headers)
    assert off.status_code == 200, off.text
    assert (await me(client, account.headers)).status_code == 401
