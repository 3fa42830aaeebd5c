"""Replaying the event log from an empty board reproduces ``GET /boards/{id}`` exactly."""

from __future__ import annotations

from tests.support.boards import API, add_member, get_board, make_card, make_list, make_world, ok
from tests.support.factories import make_account
from tests.support.replay import empty_board, fold, normalized


async def all_events(client, board_id, headers):
    events, cursor = [], "0"
    while cursor is not None:
        page = await ok(
            await client.get(
                f"{API}/boards/{board_id}/events", params={"after_seq": cursor, "limit": 7}, headers=headers
            )
        )
        events.extend(page["items"])
        cursor = page["next_cursor"]
    return events


async def test_replay_reproduces_the_board(client):
    w = await make_world(client)
    owner, member, admin = w.accounts["owner"], w.accounts["member"], w.accounts["admin"]
    h = owner.headers
    todo = await make_list(client, w.id, owner, "Todo")
    doing = await make_list(client, w.id, member, "Doing")
    gone = await make_list(client, w.id, member, "Scratch", before_id=todo["id"])
    bug = await ok(
        await client.post(
            f"{API}/boards/{w.id}/labels", json={"name": "bug", "color": "red"}, headers=admin.headers
        ),
        201,
    )
    feat = await ok(
        await client.post(
            f"{API}/boards/{w.id}/labels", json={"name": "feat", "color": "#00ff00"}, headers=admin.headers
        ),
        201,
    )
    a = await make_card(
        client, todo["id"], member, "A", label_ids=[bug["id"], feat["id"]], assignee_ids=[member.id, admin.id]
    )
    b = await make_card(
        client, todo["id"], member, "B", before_id=a["id"], due_at="2031-05-01T00:00:00+02:00"
    )
    await make_card(client, gone["id"], member, "lost with its list")
    await ok(
        await client.post(
            f"{API}/cards/{a['id']}/move", json={"list_id": doing["id"]}, headers=member.headers
        )
    )
    await ok(
        await client.post(
            f"{API}/cards/{b['id']}/move",
            json={"list_id": doing["id"], "before_id": a["id"]},
            headers=member.headers,
        )
    )
    await ok(await client.patch(f"{API}/cards/{b['id']}", json={"archived": True}, headers=member.headers))
    await ok(
        await client.patch(
            f"{API}/cards/{a['id']}",
            json={"title": "A!", "due_at": None, "assignee_ids": [admin.id]},
            headers=member.headers,
        )
    )
    await ok(
        await client.patch(
            f"{API}/lists/{todo['id']}",
            json={"after_id": doing["id"], "name": "Later"},
            headers=member.headers,
        )
    )
    await ok(
        await client.patch(f"{API}/lists/{doing['id']}", json={"archived": True}, headers=member.headers)
    )
    await ok(await client.delete(f"{API}/lists/{gone['id']}", headers=member.headers), 204)
    await ok(await client.delete(f"{API}/labels/{bug['id']}", headers=admin.headers), 204)
    await ok(
        await client.patch(f"{API}/labels/{feat['id']}", json={"name": "feature"}, headers=admin.headers)
    )
    comment = await ok(
        await client.post(f"{API}/cards/{a['id']}/comments", json={"body": "ok"}, headers=member.headers), 201
    )
    await ok(
        await client.patch(f"{API}/comments/{comment['id']}", json={"body": "ok!"}, headers=member.headers)
    )
    await ok(
        await client.post(f"{API}/cards/{a['id']}/checklist", json={"text": "x"}, headers=member.headers), 201
    )
    await ok(
        await client.patch(f"{API}/boards/{w.id}", json={"name": "Renamed", "description": "d"}, headers=h)
    )
    newcomer = await make_account(client)
    await add_member(client, w.id, admin, newcomer, "member")
    await ok(
        await client.patch(
            f"{API}/boards/{w.id}/members/{newcomer.id}", json={"role": "observer"}, headers=admin.headers
        )
    )
    await ok(await client.delete(f"{API}/boards/{w.id}/members/{admin.id}", headers=h), 204)  # unassigns A
    await ok(
        await client.patch(f"{API}/boards/{w.id}/members/{member.id}", json={"role": "owner"}, headers=h)
    )

    board = await get_board(client, w.id, member)
    events = await all_events(client, w.id, member.headers)
    assert [e["seq"] for e in events] == list(range(1, board["seq"] + 1))
    replayed = fold(empty_board(w.board), events)
    assert normalized(replayed) == normalized(board)
    card_a = next(c for c in board["cards"] if c["id"] == a["id"])
    assert card_a["assignee_ids"] == []
    assert card_a["label_ids"] == [feat["id"]]
    assert {m["user_id"]: m["role"] for m in board["members"]}[owner.id] == "admin"
