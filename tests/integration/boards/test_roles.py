"""The full role-by-route matrix: observers read, members edit content, admins manage members and
labels (and edit the board), the owner deletes or hands over the board; non-members get 404."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.boards import API, add_member, create_board, make_card, make_list, ok
from tests.support.factories import Account, make_account

ROLES = ["owner", "admin", "member", "observer"]
RANK = {"observer": 0, "member": 1, "admin": 2, "owner": 3}


@dataclass
class Scene:
    board: str
    list: str
    card: str
    label: str
    comment: str
    item: str
    target: Account  # a plain member others act upon


@pytest.fixture(scope="module")
async def people(client) -> dict[str, Account]:
    return {role: await make_account(client) for role in [*ROLES, "outsider", "target", "extra"]}


async def scene(client: Any, people: dict[str, Account]) -> Scene:
    owner = people["owner"]
    board = (await create_board(client, owner))["id"]
    for role in ("admin", "member", "observer"):
        await add_member(client, board, owner, people[role], role)
    await add_member(client, board, owner, people["target"], "member")
    lst = (await make_list(client, board, owner))["id"]
    card = (await make_card(client, lst, owner))["id"]
    label = (
        await ok(
            await client.post(f"{API}/boards/{board}/labels", json={"color": "blue"}, headers=owner.headers),
            201,
        )
    )["id"]
    comment = (
        await ok(
            await client.post(f"{API}/cards/{card}/comments", json={"body": "c"}, headers=owner.headers), 201
        )
    )["id"]
    item = (
        await ok(
            await client.post(f"{API}/cards/{card}/checklist", json={"text": "t"}, headers=owner.headers), 201
        )
    )["id"]
    return Scene(board, lst, card, label, comment, item, people["target"])


Call = Callable[[Any, Scene, dict[str, str], dict[str, Account]], Awaitable[Any]]
CASES: list[tuple[str, str, int, Call]] = [
    ("GET board", "observer", 200, lambda c, s, h, p: c.get(f"{API}/boards/{s.board}", headers=h)),
    (
        "PATCH board",
        "admin",
        200,
        lambda c, s, h, p: c.patch(f"{API}/boards/{s.board}", json={"name": "n"}, headers=h),
    ),
    ("DELETE board", "owner", 204, lambda c, s, h, p: c.delete(f"{API}/boards/{s.board}", headers=h)),
    ("GET events", "observer", 200, lambda c, s, h, p: c.get(f"{API}/boards/{s.board}/events", headers=h)),
    ("GET members", "observer", 200, lambda c, s, h, p: c.get(f"{API}/boards/{s.board}/members", headers=h)),
    (
        "POST member",
        "admin",
        201,
        lambda c, s, h, p: c.post(
            f"{API}/boards/{s.board}/members", json={"email": p["extra"].email, "role": "observer"}, headers=h
        ),
    ),
    (
        "PATCH member",
        "admin",
        200,
        lambda c, s, h, p: c.patch(
            f"{API}/boards/{s.board}/members/{s.target.id}", json={"role": "observer"}, headers=h
        ),
    ),
    (
        "DELETE member",
        "admin",
        204,
        lambda c, s, h, p: c.delete(f"{API}/boards/{s.board}/members/{s.target.id}", headers=h),
    ),
    (
        "transfer board",
        "owner",
        200,
        lambda c, s, h, p: c.patch(
            f"{API}/boards/{s.board}/members/{s.target.id}", json={"role": "owner"}, headers=h
        ),
    ),
    ("GET labels", "observer", 200, lambda c, s, h, p: c.get(f"{API}/boards/{s.board}/labels", headers=h)),
    (
        "POST label",
        "admin",
        201,
        lambda c, s, h, p: c.post(f"{API}/boards/{s.board}/labels", json={"color": "red"}, headers=h),
    ),
    (
        "PATCH label",
        "admin",
        200,
        lambda c, s, h, p: c.patch(f"{API}/labels/{s.label}", json={"name": "x"}, headers=h),
    ),
    ("DELETE label", "admin", 204, lambda c, s, h, p: c.delete(f"{API}/labels/{s.label}", headers=h)),
    (
        "POST list",
        "member",
        201,
        lambda c, s, h, p: c.post(f"{API}/boards/{s.board}/lists", json={"name": "l"}, headers=h),
    ),
    ("GET list", "observer", 200, lambda c, s, h, p: c.get(f"{API}/lists/{s.list}", headers=h)),
    (
        "PATCH list",
        "member",
        200,
        lambda c, s, h, p: c.patch(f"{API}/lists/{s.list}", json={"archived": True}, headers=h),
    ),
    ("DELETE list", "member", 204, lambda c, s, h, p: c.delete(f"{API}/lists/{s.list}", headers=h)),
    ("GET cards", "observer", 200, lambda c, s, h, p: c.get(f"{API}/boards/{s.board}/cards", headers=h)),
    (
        "POST card",
        "member",
        201,
        lambda c, s, h, p: c.post(f"{API}/lists/{s.list}/cards", json={"title": "t"}, headers=h),
    ),
    ("GET card", "observer", 200, lambda c, s, h, p: c.get(f"{API}/cards/{s.card}", headers=h)),
    (
        "PATCH card",
        "member",
        200,
        lambda c, s, h, p: c.patch(f"{API}/cards/{s.card}", json={"title": "u"}, headers=h),
    ),
    (
        "move card",
        "member",
        200,
        lambda c, s, h, p: c.post(f"{API}/cards/{s.card}/move", json={"list_id": s.list}, headers=h),
    ),
    ("DELETE card", "member", 204, lambda c, s, h, p: c.delete(f"{API}/cards/{s.card}", headers=h)),
    ("GET comments", "observer", 200, lambda c, s, h, p: c.get(f"{API}/cards/{s.card}/comments", headers=h)),
    (
        "POST comment",
        "member",
        201,
        lambda c, s, h, p: c.post(f"{API}/cards/{s.card}/comments", json={"body": "b"}, headers=h),
    ),
    (
        "DELETE comment (not author)",
        "admin",
        204,
        lambda c, s, h, p: c.delete(f"{API}/comments/{s.comment}", headers=h),
    ),
    (
        "POST checklist",
        "member",
        201,
        lambda c, s, h, p: c.post(f"{API}/cards/{s.card}/checklist", json={"text": "t"}, headers=h),
    ),
    (
        "PATCH checklist",
        "member",
        200,
        lambda c, s, h, p: c.patch(f"{API}/checklist-items/{s.item}", json={"done": True}, headers=h),
    ),
    (
        "DELETE checklist",
        "member",
        204,
        lambda c, s, h, p: c.delete(f"{API}/checklist-items/{s.item}", headers=h),
    ),
]


@pytest.mark.parametrize(("route", "required", "success", "call"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("role", [*ROLES, "outsider"])
async def test_role_matrix(client, people, route, required, success, call, role):
    s = await scene(client, people)
    headers = people[role].headers
    before = (await ok(await client.get(f"{API}/boards/{s.board}", headers=people["owner"].headers)))["seq"]
    response = await call(client, s, headers, people)
    if role == "outsider":
        expected = 404
    elif route == "DELETE comment (not author)" and role == "owner":
        expected = success  # the comment's author is the owner
    else:
        expected = success if RANK[role] >= RANK[required] else 403
    assert response.status_code == expected, f"{role} {route}: {response.status_code} {response.text}"
    if expected >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        after = (await ok(await client.get(f"{API}/boards/{s.board}", headers=people["owner"].headers)))[
            "seq"
        ]
        assert after == before, "a refused request changed the board"


async def test_outsider_and_missing_board_look_alike(client, people):
    s = await scene(client, people)
    outsider = await client.get(f"{API}/boards/{s.board}", headers=people["outsider"].headers)
    missing = await client.get(
        f"{API}/boards/00000000-0000-7000-8000-000000000000", headers=people["outsider"].headers
    )
    assert outsider.status_code == missing.status_code == 404
    assert outsider.json()["detail"] == missing.json()["detail"]


async def test_comment_edit_is_the_authors_only(client, people):
    s = await scene(client, people)
    mine = await ok(
        await client.post(
            f"{API}/cards/{s.card}/comments", json={"body": "mine"}, headers=people["member"].headers
        ),
        201,
    )
    for role in ("owner", "admin"):
        denied = await client.patch(
            f"{API}/comments/{mine['id']}", json={"body": "theirs"}, headers=people[role].headers
        )
        assert denied.status_code == 403
    edited = await ok(
        await client.patch(
            f"{API}/comments/{mine['id']}", json={"body": "mine!"}, headers=people["member"].headers
        )
    )
    assert edited["body"] == "mine!"
    # an author may delete their own comment
    await ok(await client.delete(f"{API}/comments/{mine['id']}", headers=people["member"].headers), 204)


async def test_any_member_may_leave_but_the_owner_must_hand_over_first(client, people):
    s = await scene(client, people)
    observer = people["observer"]
    await ok(
        await client.delete(f"{API}/boards/{s.board}/members/{observer.id}", headers=observer.headers), 204
    )
    assert (await client.get(f"{API}/boards/{s.board}", headers=observer.headers)).status_code == 404
    owner = people["owner"]
    refused = await client.delete(f"{API}/boards/{s.board}/members/{owner.id}", headers=owner.headers)
    assert refused.status_code == 422


async def test_admin_cannot_touch_the_owner_or_grant_owner(client, people):
    s = await scene(client, people)
    admin, owner = people["admin"], people["owner"]
    demote = await client.patch(
        f"{API}/boards/{s.board}/members/{owner.id}", json={"role": "member"}, headers=admin.headers
    )
    assert demote.status_code in (403, 422)
    remove = await client.delete(f"{API}/boards/{s.board}/members/{owner.id}", headers=admin.headers)
    assert remove.status_code in (403, 422)
    grant = await client.patch(
        f"{API}/boards/{s.board}/members/{s.target.id}", json={"role": "owner"}, headers=admin.headers
    )
    assert grant.status_code == 403
    roles = {
        m["user_id"]: m["role"]
        for m in (await ok(await client.get(f"{API}/boards/{s.board}/members", headers=owner.headers)))[
            "items"
        ]
    }
    assert roles[owner.id] == "owner"
    assert roles[s.target.id] == "member"
