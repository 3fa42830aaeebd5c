"""Optimistic concurrency (body ``version`` or ``If-Match``) and field validation: a refused change
changes nothing and says why."""

from __future__ import annotations

import pytest

from tests.support.boards import API, create_board, get_board, make_card, make_list, make_world, ok
from tests.support.factories import make_account


async def test_stale_version_gets_409_with_current_and_changes_nothing(client):
    w = await make_world(client)
    member = w.accounts["member"]
    lst = await make_list(client, w.id, member)
    card = await make_card(client, lst["id"], member, "v1")
    first = await client.patch(
        f"{API}/cards/{card['id']}", json={"title": "v2", "version": 1}, headers=member.headers
    )
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'
    seq = (await get_board(client, w.id, member))["seq"]
    stale = await client.patch(
        f"{API}/cards/{card['id']}", json={"title": "v3", "version": 1}, headers=member.headers
    )
    assert stale.status_code == 409
    assert stale.json()["current"]["title"] == "v2"
    assert stale.json()["current"]["version"] == 2
    by_header = await client.patch(
        f"{API}/cards/{card['id']}", json={"title": "v3"}, headers={**member.headers, "If-Match": '"1"'}
    )
    assert by_header.status_code == 409
    stale_move = await client.post(
        f"{API}/cards/{card['id']}/move", json={"list_id": lst["id"], "version": 1}, headers=member.headers
    )
    assert stale_move.status_code == 409
    assert (await get_board(client, w.id, member))["seq"] == seq
    fresh = await client.patch(
        f"{API}/cards/{card['id']}", json={"title": "v3"}, headers={**member.headers, "If-Match": 'W/"2"'}
    )
    assert fresh.status_code == 200
    assert fresh.json()["version"] == 3
    blind = await client.patch(f"{API}/cards/{card['id']}", json={"title": "v4"}, headers=member.headers)
    assert blind.status_code == 200


@pytest.mark.parametrize("resource", ["board", "list", "label", "comment", "checklist", "member"])
async def test_every_mutable_resource_is_versioned(client, resource):
    w = await make_world(client)
    owner = w.accounts["owner"]
    lst = await make_list(client, w.id, owner)
    card = await make_card(client, lst["id"], owner)
    if resource == "board":
        url, body = f"{API}/boards/{w.id}", {"name": "x"}
    elif resource == "list":
        url, body = f"{API}/lists/{lst['id']}", {"name": "x"}
    elif resource == "label":
        label = await ok(
            await client.post(f"{API}/boards/{w.id}/labels", json={"color": "red"}, headers=owner.headers),
            201,
        )
        url, body = f"{API}/labels/{label['id']}", {"name": "x"}
    elif resource == "comment":
        c = await ok(
            await client.post(
                f"{API}/cards/{card['id']}/comments", json={"body": "a"}, headers=owner.headers
            ),
            201,
        )
        url, body = f"{API}/comments/{c['id']}", {"body": "x"}
    elif resource == "checklist":
        i = await ok(
            await client.post(
                f"{API}/cards/{card['id']}/checklist", json={"text": "a"}, headers=owner.headers
            ),
            201,
        )
        url, body = f"{API}/checklist-items/{i['id']}", {"text": "x"}
    else:
        url, body = f"{API}/boards/{w.id}/members/{w.accounts['member'].id}", {"role": "observer"}
    done = await client.patch(url, json={**body, "version": 1}, headers=owner.headers)
    assert done.status_code == 200, done.text
    assert done.json()["version"] == 2
    assert done.headers["etag"] == '"2"'
    stale = await client.patch(url, json={**body, "version": 1}, headers=owner.headers)
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == 2
    stale_delete = await client.delete(url, headers={**owner.headers, "If-Match": '"1"'})
    assert stale_delete.status_code == 409


BAD_CARDS = [
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": "ok", "description": "x" * 10_001}, "description"),
    ({"title": "ok", "due_at": "2030-01-01T10:00:00"}, "due_at"),
    ({"title": "ok", "due_at": "tomorrow"}, "due_at"),
    ({"title": "ok", "assignee_ids": ["not-a-uuid"]}, "assignee_ids"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CARDS)
async def test_card_fields_are_validated(client, body, field):
    w = await make_world(client)
    lst = await make_list(client, w.id, w.accounts["owner"])
    seq = (await get_board(client, w.id, w.accounts["owner"]))["seq"]
    response = await client.post(f"{API}/lists/{lst['id']}/cards", json=body, headers=w.h("member"))
    assert response.status_code == 422, response.text
    assert any(e["field"].startswith(field) for e in response.json()["errors"])
    assert (await get_board(client, w.id, w.accounts["owner"]))["seq"] == seq


async def test_ids_must_belong_to_the_same_board(client):
    w = await make_world(client)
    owner, member = w.accounts["owner"], w.accounts["member"]
    other_board = await create_board(client, owner, "Other")
    other_list = await make_list(client, other_board["id"], owner)
    other_label = await ok(
        await client.post(
            f"{API}/boards/{other_board['id']}/labels", json={"color": "red"}, headers=owner.headers
        ),
        201,
    )
    lst = await make_list(client, w.id, owner)
    card = await make_card(client, lst["id"], owner)
    other_card = await make_card(client, other_list["id"], owner)
    seq = (await get_board(client, w.id, owner))["seq"]
    outsider = await make_account(client)
    cases = [
        (
            client.post(
                f"{API}/cards/{card['id']}/move", json={"list_id": other_list["id"]}, headers=member.headers
            ),
            "list_id",
        ),
        (
            client.patch(
                f"{API}/cards/{card['id']}", json={"label_ids": [other_label["id"]]}, headers=member.headers
            ),
            "label_ids",
        ),
        (
            client.patch(
                f"{API}/cards/{card['id']}", json={"assignee_ids": [outsider.id]}, headers=member.headers
            ),
            "assignee_ids",
        ),
        (
            client.post(
                f"{API}/lists/{lst['id']}/cards",
                json={"title": "t", "after_id": other_card["id"]},
                headers=member.headers,
            ),
            "after_id",
        ),
        (
            client.post(
                f"{API}/boards/{w.id}/lists",
                json={"name": "n", "before_id": other_list["id"]},
                headers=member.headers,
            ),
            "before_id",
        ),
    ]
    for request, field in cases:
        response = await request
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == [field]
    board = await get_board(client, w.id, owner)
    assert board["seq"] == seq
    assert board["cards"][0]["list_id"] == lst["id"]
    assert board["cards"][0]["label_ids"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("labels", {"color": "#abc"}, "color"),
        ("labels", {"color": "mauve"}, "color"),
        ("labels", {"color": "red", "name": "x" * 51}, "name"),
        ("lists", {"name": ""}, "name"),
        ("lists", {"name": "x" * 101}, "name"),
        ("members", {"role": "member"}, "user_id"),
        ("members", {"email": "nobody@nowhere.test"}, "email"),
        ("members", {"email": "a@b.c", "role": "king"}, "role"),
    ],
)
async def test_board_children_are_validated(client, path, body, field):
    w = await make_world(client)
    response = await client.post(f"{API}/boards/{w.id}/{path}", json=body, headers=w.h("owner"))
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_query_and_header_limits(client):
    w = await make_world(client)
    h = w.h("owner")
    assert (await client.get(f"{API}/boards/{w.id}/cards", params={"limit": 0}, headers=h)).status_code in (
        400,
        422,
    )
    assert (
        await client.get(f"{API}/boards/{w.id}/cards", params={"limit": 201}, headers=h)
    ).status_code == 422
    assert (
        await client.get(f"{API}/boards/{w.id}/cards", params={"cursor": "%%%"}, headers=h)
    ).status_code == 422
    bad_etag = await client.patch(
        f"{API}/boards/{w.id}", json={"name": "x"}, headers={**h, "If-Match": "nope"}
    )
    assert bad_etag.status_code == 422
    assert (await client.get(f"{API}/search", params={"q": "!!!"}, headers=h)).status_code == 422
    big = await client.post(f"{API}/boards", json={"name": "x" * 101}, headers=h)
    assert big.status_code == 422
