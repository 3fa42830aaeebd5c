"""Change hooks run inside the change's transaction: they see who is newly concerned, and one
that fails rolls the whole change back, event included (nothing reaches the sink)."""

from __future__ import annotations

import pytest

from server.boards.hooks import register_change_hook, unregister_change_hook
from tests.support.boards import API, get_board, make_card, make_list, make_world, ok


@pytest.fixture
def captured():
    changes = []

    async def hook(_session, change):
        changes.append(change)

    register_change_hook(hook)
    yield changes
    unregister_change_hook(hook)


async def test_hooks_see_assignments_mentions_and_members(client, captured):
    w = await make_world(client)
    member, admin = w.accounts["member"], w.accounts["admin"]
    lst = await make_list(client, w.id, member)
    card = await make_card(client, lst["id"], member, assignee_ids=[member.id])
    await ok(
        await client.patch(
            f"{API}/cards/{card['id']}", json={"assignee_ids": [member.id, admin.id]}, headers=member.headers
        )
    )
    await ok(
        await client.post(
            f"{API}/cards/{card['id']}/comments",
            json={"body": f"@{admin.username} look"},
            headers=member.headers,
        ),
        201,
    )
    mine = [c for c in captured if str(c.event.board_id) == w.id]
    by_type = {c.event.type: c for c in mine}
    assert [str(u) for u in by_type["card.created"].newly_assigned] == [member.id]
    assert [str(u) for u in by_type["card.updated"].newly_assigned] == [admin.id]
    assert [str(u) for u in by_type["comment.created"].newly_mentioned] == [admin.id]
    added = [str(c.added_member) for c in mine if c.event.type == "member.added"]
    assert w.accounts["observer"].id in added


async def test_a_failing_hook_rolls_the_change_back(client, app):
    w = await make_world(client)
    member = w.accounts["member"]
    lst = await make_list(client, w.id, member)
    seq = (await get_board(client, w.id, member))["seq"]
    sink = app.state.hub.sink
    handed = len(getattr(sink, "events", []))

    async def boom(_session, change):
        raise RuntimeError("hook failed")

    register_change_hook(boom)
    try:
        response = await client.post(
            f"{API}/lists/{lst['id']}/cards", json={"title": "never"}, headers=member.headers
        )
    finally:
        unregister_change_hook(boom)
    assert response.status_code == 500
    assert "hook failed" not in response.text
    board = await get_board(client, w.id, member)
    assert board["seq"] == seq
    assert board["cards"] == []
    if hasattr(sink, "events"):
        assert len(sink.events) == handed
    # the seq it would have taken is used by the next change: no gap
    card = await make_card(client, lst["id"], member)
    events = (
        await ok(
            await client.get(f"{API}/boards/{w.id}/events", params={"after_seq": seq}, headers=member.headers)
        )
    )["items"]
    assert [(e["seq"], e["data"]["id"]) for e in events] == [(seq + 1, card["id"])]
