"""The main path of the board routes end to end."""

from __future__ import annotations

from tests.support.boards import API, get_board, make_card, make_list, make_world, ok
from tests.support.factories import make_account


async def test_board_lists_cards_roundtrip(client):
    w = await make_world(client)
    owner = w.accounts["owner"]
    todo = await make_list(client, w.id, owner, "Todo")
    done = await make_list(client, w.id, owner, "Done")
    first = await make_list(client, w.id, owner, "First", before_id=todo["id"])
    assert first["position"] < todo["position"] < done["position"]
    label = await ok(
        await client.post(
            f"{API}/boards/{w.id}/labels", json={"name": "bug", "color": "#AABBCC"}, headers=owner.headers
        ),
        201,
    )
    assert label["color"] == "#aabbcc"
    card = await make_card(
        client,
        todo["id"],
        w.accounts["member"],
        "Write docs",
        assignee_ids=[w.accounts["member"].id],
        label_ids=[label["id"]],
        due_at="2030-01-01T10:00:00Z",
    )
    assert card["assignee_ids"] == [w.accounts["member"].id]
    moved = await ok(
        await client.post(
            f"{API}/cards/{card['id']}/move", json={"list_id": done["id"]}, headers=w.h("member")
        )
    )
    assert moved["list_id"] == done["id"]
    assert moved["previous_list_id"] == todo["id"]
    comment = await ok(
        await client.post(
            f"{API}/cards/{card['id']}/comments",
            json={"body": f"hi @{w.accounts['admin'].username}!"},
            headers=w.h("member"),
        ),
        201,
    )
    assert comment["mentions"] == [w.accounts["admin"].id]
    item = await ok(
        await client.post(
            f"{API}/cards/{card['id']}/checklist", json={"text": "spell check"}, headers=w.h("member")
        ),
        201,
    )
    detail = await ok(await client.get(f"{API}/cards/{card['id']}", headers=w.h("observer")))
    assert detail["checklist"] == [item]  # field for field as created (on PostgreSQL read as JSON)
    more = [
        await ok(
            await client.post(
                f"{API}/cards/{card['id']}/checklist", json={"text": f"step {i}"}, headers=w.h("member")
            ),
            201,
        )
        for i in (2, 3)
    ]
    detail = await ok(await client.get(f"{API}/cards/{card['id']}", headers=w.h("observer")))
    assert detail["checklist"] == [item, *more]  # in position order
    # The card whole, as the board shows it (on PostgreSQL read with the caller's role, at once).
    assert detail["assignee_ids"] == [w.accounts["member"].id]
    assert detail["label_ids"] == [label["id"]]
    assert detail["list_id"] == done["id"]
    assert detail["title"] == "Write docs"
    outsider = await make_account(client)
    assert (await client.get(f"{API}/cards/{card['id']}", headers=outsider.headers)).status_code == 404
    board = await get_board(client, w.id, w.accounts["observer"])
    assert [lst["name"] for lst in board["lists"]] == ["First", "Todo", "Done"]
    assert board["cards"][0]["list_id"] == done["id"]
    assert {m["role"] for m in board["members"]} == {"owner", "admin", "member", "observer"}
    events = await ok(await client.get(f"{API}/boards/{w.id}/events", headers=w.h("observer")))
    assert [e["seq"] for e in events["items"]] == list(range(1, board["seq"] + 1))
    assert events["next_cursor"] is None
    hits = await ok(await client.get(f"{API}/search", params={"q": "docs"}, headers=w.h("observer")))
    assert [h["card_id"] for h in hits["items"]] == [card["id"]]
    hits = await ok(await client.get(f"{API}/search", params={"q": "hi"}, headers=w.h("observer")))
    assert hits["items"][0]["kind"] == "comment"
    nothing = await ok(await client.get(f"{API}/search", params={"q": "docs"}, headers=w.h("outsider")))
    assert nothing["items"] == []
