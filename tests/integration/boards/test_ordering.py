"""Placement from before_id / after_id, moves, and the event type each PATCH emits."""

from __future__ import annotations

from tests.support.boards import API, get_board, make_card, make_list, make_world, ok


def names(items):
    return [i.get("name") or i.get("title") for i in sorted(items, key=lambda x: x["position"])]


async def last_event(client, board_id, headers):
    board = await ok(await client.get(f"{API}/boards/{board_id}", headers=headers))
    page = await ok(
        await client.get(
            f"{API}/boards/{board_id}/events", params={"after_seq": board["seq"] - 1}, headers=headers
        )
    )
    return page["items"][-1]


async def test_lists_and_cards_land_where_asked(client):
    w = await make_world(client)
    m = w.accounts["member"]
    a = await make_list(client, w.id, m, "A")
    c = await make_list(client, w.id, m, "C")
    await make_list(client, w.id, m, "B", after_id=a["id"], before_id=c["id"])
    await make_list(client, w.id, m, "0", before_id=a["id"])
    await make_list(client, w.id, m, "D")
    board = await get_board(client, w.id, m)
    assert names(board["lists"]) == ["0", "A", "B", "C", "D"]
    bad = await client.post(
        f"{API}/boards/{w.id}/lists",
        json={"name": "x", "after_id": c["id"], "before_id": a["id"]},
        headers=m.headers,
    )
    assert bad.status_code == 422

    one = await make_card(client, a["id"], m, "1")
    three = await make_card(client, a["id"], m, "3")
    await make_card(client, a["id"], m, "2", after_id=one["id"])
    moved = await ok(
        await client.post(
            f"{API}/cards/{three['id']}/move",
            json={"list_id": a["id"], "before_id": one["id"]},
            headers=m.headers,
        )
    )
    assert moved["previous_list_id"] == a["id"]
    board = await get_board(client, w.id, m)
    assert names([x for x in board["cards"] if x["list_id"] == a["id"]]) == ["3", "1", "2"]
    # GET /boards/{id} serves cards in position order within each list
    in_a = [x["title"] for x in board["cards"] if x["list_id"] == a["id"]]
    assert in_a == ["3", "1", "2"]
    self_ref = await client.post(
        f"{API}/cards/{one['id']}/move", json={"list_id": a["id"], "after_id": one["id"]}, headers=m.headers
    )
    assert self_ref.status_code == 422


async def test_list_patch_event_types(client):
    w = await make_world(client)
    m = w.accounts["member"]
    a = await make_list(client, w.id, m, "A")
    b = await make_list(client, w.id, m, "B")
    expectations = [
        ({"name": "A2"}, "list.updated"),
        ({"archived": True}, "list.archived"),
        ({"archived": False, "name": "A3"}, "list.archived"),
        ({"after_id": b["id"]}, "list.moved"),
        ({"before_id": None}, "list.moved"),
    ]
    for body, kind in expectations:
        out = await ok(await client.patch(f"{API}/lists/{a['id']}", json=body, headers=m.headers))
        event = await last_event(client, w.id, m.headers)
        assert event["type"] == kind, body
        assert event["data"] == out
    board = await get_board(client, w.id, m)
    assert names(board["lists"]) == ["B", "A3"]
