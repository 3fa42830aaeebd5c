"""Events reach the sink after commit and only after commit; refused changes hand over nothing."""

from __future__ import annotations

import msgspec
import pytest

from persistence.events import RecordingSink
from tests.support.boards import API, create_board, get_board, make_card, make_list, make_world, ok
from tests.support.sink import tee_sink


@pytest.fixture
def sink(app, monkeypatch) -> RecordingSink:
    return tee_sink(app, monkeypatch)


def sink_events(sink: RecordingSink, board_id: str):
    return [e for e in list(sink.events) if str(e.board_id) == board_id]


async def test_only_committed_changes_reach_the_sink(client, sink):
    w = await make_world(client)
    member = w.accounts["member"]
    lst = await make_list(client, w.id, member)
    card = await make_card(client, lst["id"], member)
    other = await create_board(client, w.accounts["owner"], "elsewhere")
    other_list = await make_list(client, other["id"], w.accounts["owner"])
    handed = sink_events(sink, w.id)
    assert [e.seq for e in handed] == list(range(1, len(handed) + 1))
    refused = [
        client.patch(f"{API}/cards/{card['id']}", json={"title": "x", "version": 99}, headers=member.headers),
        client.post(
            f"{API}/cards/{card['id']}/move", json={"list_id": other_list["id"]}, headers=member.headers
        ),
        client.patch(f"{API}/cards/{card['id']}", json={"title": "x"}, headers=w.h("observer")),
        client.delete(f"{API}/boards/{w.id}", headers=member.headers),
    ]
    for request in refused:
        assert (await request).status_code in (403, 409, 422)
    assert len(sink_events(sink, w.id)) == len(handed)
    assert (await get_board(client, w.id, member))["seq"] == len(handed)

    await ok(await client.patch(f"{API}/cards/{card['id']}", json={"title": "y"}, headers=member.headers))
    after = sink_events(sink, w.id)
    assert len(after) == len(handed) + 1
    event = after[-1]
    assert event.type == "card.updated"
    logged = (
        await ok(
            await client.get(
                f"{API}/boards/{w.id}/events", params={"after_seq": event.seq - 1}, headers=member.headers
            )
        )
    )["items"]
    assert logged[0]["seq"] == event.seq
    assert logged[0]["data"] == msgspec.json.decode(event.data)
    assert msgspec.json.decode(event.data)["title"] == "y"


async def test_member_and_board_controls(client, sink):
    from persistence.events import AccessRevoked, BoardDeleted, UserMessage

    w = await make_world(client)
    observer = w.accounts["observer"]

    def membership(c: object) -> bool:  # (notifications push their own UserMessages too)
        return isinstance(c, UserMessage) and str(c.user_id) == observer.id and c.event.startswith("member.")

    added = [c for c in sink.controls if membership(c)]
    assert [c.event for c in added] == ["member.added"]
    await ok(await client.delete(f"{API}/boards/{w.id}/members/{observer.id}", headers=w.h("admin")), 204)
    revoked = [c for c in sink.controls if isinstance(c, AccessRevoked) and str(c.board_id) == w.id]
    assert [str(c.user_id) for c in revoked] == [observer.id]
    removed = [c for c in sink.controls if membership(c)]
    assert [c.event for c in removed] == ["member.added", "member.removed"]
    await ok(await client.delete(f"{API}/boards/{w.id}", headers=w.h("owner")), 204)
    assert any(isinstance(c, BoardDeleted) and str(c.board_id) == w.id for c in sink.controls)
    assert sink_events(sink, w.id)[-1].type == "board.deleted"
    assert (await client.get(f"{API}/boards/{w.id}", headers=w.h("owner"))).status_code == 404
