"""``GET /boards/{id}`` caching (SPEC §6): an ``ETag`` that changes with every change to the board,
``If-None-Match`` answered 304 without a body, and the ETag usable as ``If-Match`` on the board."""

from __future__ import annotations

import asyncio

from tests.support.boards import API, add_member, create_board, make_card, make_list, make_world, ok
from tests.support.factories import make_account


async def board_get(client, board_id, who, **headers):
    return await client.get(f"{API}/boards/{board_id}", headers={**who.headers, **headers})


async def test_etag_changes_with_every_change_of_the_board(client):
    w = await make_world(client)
    owner, member = w.accounts["owner"], w.accounts["member"]
    seen: list[str] = []

    async def tag_after_change() -> str:
        response = await board_get(client, w.id, owner)
        assert response.status_code == 200
        tag = response.headers["etag"]
        assert tag not in seen, f"{tag} again after a change"
        seen.append(tag)
        return tag

    await tag_after_change()
    lst = await make_list(client, w.id, owner)
    await tag_after_change()
    other = await make_list(client, w.id, owner, "Done")
    await tag_after_change()
    cards = []
    for i in range(5):
        cards.append(await make_card(client, lst["id"], member, f"c{i}"))
        await tag_after_change()
    changes = [
        ("post", f"/cards/{cards[0]['id']}/move", {"list_id": other["id"]}),
        ("patch", f"/cards/{cards[1]['id']}", {"title": "renamed"}),
        ("patch", f"/cards/{cards[2]['id']}", {"archived": True}),
        ("post", f"/cards/{cards[3]['id']}/comments", {"body": "hi"}),
        ("post", f"/cards/{cards[3]['id']}/checklist", {"text": "x"}),
        ("patch", f"/lists/{other['id']}", {"name": "Shipped"}),
        ("post", f"/boards/{w.id}/labels", {"color": "red"}),
        ("patch", f"/boards/{w.id}/members/{w.accounts['observer'].id}", {"role": "member"}),
    ]
    for method, path, body in changes:
        response = await client.request(method.upper(), API + path, json=body, headers=member.headers)
        if response.status_code == 403:  # admin-only changes
            response = await client.request(method.upper(), API + path, json=body, headers=owner.headers)
        assert response.status_code in (200, 201), (path, response.text)
        await tag_after_change()
    await ok(await client.delete(f"{API}/cards/{cards[4]['id']}", headers=member.headers), 204)
    await tag_after_change()
    # a member renaming themself changes the board's body (members[].display_name) without an event
    await ok(await client.patch(f"{API}/users/me", json={"display_name": "New name"}, headers=member.headers))
    await tag_after_change()
    assert len(seen) == 18
    # an unchanged board keeps its tag, whoever reads it
    again = await board_get(client, w.id, w.accounts["observer"])
    assert again.headers["etag"] == seen[-1]


async def test_if_none_match_answers_304_until_the_board_changes(client):
    w = await make_world(client)
    owner, observer = w.accounts["owner"], w.accounts["observer"]
    lst = await make_list(client, w.id, owner)
    await make_card(client, lst["id"], owner, "one")
    first = await board_get(client, w.id, observer)
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    assert "accept-encoding" in first.headers["vary"].lower()
    for header in (tag, f"W/{tag}", f'"nope", {tag}', "*"):
        cached = await board_get(client, w.id, observer, **{"If-None-Match": header})
        assert cached.status_code == 304, header
        assert cached.content == b""
        assert cached.headers["etag"] == tag
        assert cached.headers["cache-control"] == "private, no-cache"
    for header in ('"1"', '"0.0.0.0"', "garbage", ""):
        fresh = await board_get(client, w.id, observer, **{"If-None-Match": header})
        assert fresh.status_code == 200, header
        assert fresh.json() == first.json()
    await make_card(client, lst["id"], owner, "two")
    changed = await board_get(client, w.id, observer, **{"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert [c["title"] for c in changed.json()["cards"]] == ["one", "two"]
    assert (
        await board_get(client, w.id, observer, **{"If-None-Match": changed.headers["etag"]})
    ).status_code == 304
    # no peeking: a non-member gets 404 whatever the header, as without it
    outsider = w.accounts["outsider"]
    for header in ("*", changed.headers["etag"]):
        assert (await board_get(client, w.id, outsider, **{"If-None-Match": header})).status_code == 404


async def test_board_etag_works_as_if_match(client):
    owner = await make_account(client)
    board = await create_board(client, owner)
    lst = await make_list(client, board["id"], owner)
    tag = (await board_get(client, board["id"], owner)).headers["etag"]
    await make_card(client, lst["id"], owner)  # the board's content moves on, its own fields do not
    renamed = await client.patch(
        f"{API}/boards/{board['id']}", json={"name": "Renamed"}, headers={**owner.headers, "If-Match": tag}
    )
    assert renamed.status_code == 200, renamed.text
    stale = await client.patch(
        f"{API}/boards/{board['id']}", json={"name": "Again"}, headers={**owner.headers, "If-Match": tag}
    )
    assert stale.status_code == 409
    assert stale.json()["current"]["name"] == "Renamed"


async def test_etag_and_body_agree_under_concurrent_writers(client):
    """Readers racing writers: a 200's ETag belongs to its body (same seq), and a 304 is only ever
    given for the tag the board has when it is asked."""
    w = await make_world(client)
    owner, member = w.accounts["owner"], w.accounts["member"]
    lst = await make_list(client, w.id, owner)
    bodies: dict[str, int] = {}

    async def write(n: int) -> None:
        for i in range(n):
            await make_card(client, lst["id"], member, f"w{i}")

    async def read(n: int) -> None:
        tag = None
        for _ in range(n):
            response = await board_get(client, w.id, owner, **({"If-None-Match": tag} if tag else {}))
            if response.status_code == 304:
                assert response.headers["etag"] == tag
                continue
            assert response.status_code == 200
            tag = response.headers["etag"]
            seq = response.json()["seq"]
            assert bodies.setdefault(tag, seq) == seq  # one tag, one board state
            assert tag.strip('"').split(".")[1] == str(seq)

    await asyncio.gather(write(15), write(15), read(30), read(30))
    final = await board_get(client, w.id, owner)
    assert final.json()["seq"] == (await board_get(client, w.id, member)).json()["seq"]
    assert len(final.json()["cards"]) == 30
    await add_member(client, w.id, owner, await make_account(client), "observer")
    assert (
        await board_get(client, w.id, owner, **{"If-None-Match": final.headers["etag"]})
    ).status_code == 200
