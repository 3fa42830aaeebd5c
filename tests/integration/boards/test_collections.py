"""Card filters with cursor pagination, ``GET /boards`` pages, and search that never leaks."""

from __future__ import annotations

from tests.support.boards import API, add_member, create_board, make_card, make_list, make_world, ok
from tests.support.factories import make_account


async def pages(client, url, headers, **params):
    """Every item of a collection, following ``next_cursor`` as ``cursor`` (the other parameters
    sent again unchanged, as a generic client does); stops at 50 pages so a cursor that is
    ignored fails instead of looping."""
    items, cursor, count = [], None, 0
    while count < 50:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await ok(await client.get(url, params=query, headers=headers))
        items.extend(page["items"])
        count += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, count
    raise AssertionError(f"{url}: still a next_cursor after {count} pages")


async def test_card_filters_and_cursor_pagination(client):
    w = await make_world(client)
    owner, member = w.accounts["owner"], w.accounts["member"]
    lst = await make_list(client, w.id, owner)
    bug = await ok(
        await client.post(f"{API}/boards/{w.id}/labels", json={"color": "red"}, headers=owner.headers), 201
    )
    made = []
    for i in range(7):
        made.append(
            await make_card(
                client,
                lst["id"],
                owner,
                f"task {i}" + (" urgent" if i % 2 else ""),
                label_ids=[bug["id"]] if i < 3 else [],
                assignee_ids=[member.id] if i in (1, 5) else [],
                due_at=f"2030-01-0{i + 1}T12:00:00Z",
            )
        )
    await ok(
        await client.patch(f"{API}/cards/{made[6]['id']}", json={"archived": True}, headers=owner.headers)
    )
    url = f"{API}/boards/{w.id}/cards"
    everything, count = await pages(client, url, owner.headers, limit=2)
    assert [c["id"] for c in everything] == [c["id"] for c in made[:6]]
    assert count == 3
    urgent, _ = await pages(client, url, owner.headers, q="URGENT")
    assert [c["title"] for c in urgent] == ["task 1 urgent", "task 3 urgent", "task 5 urgent"]
    labelled, _ = await pages(client, url, owner.headers, label=bug["id"])
    assert len(labelled) == 3
    mine, _ = await pages(client, url, owner.headers, assignee=member.id)
    assert [c["id"] for c in mine] == [made[1]["id"], made[5]["id"]]
    due, _ = await pages(client, url, owner.headers, due_before="2030-01-03T00:00:00Z")
    assert [c["id"] for c in due] == [made[0]["id"], made[1]["id"]]
    archived, _ = await pages(client, url, owner.headers, archived="true")
    assert [c["id"] for c in archived] == [made[6]["id"]]
    combined, _ = await pages(client, url, owner.headers, q="urgent", label=bug["id"], assignee=member.id)
    assert [c["id"] for c in combined] == [made[1]["id"]]
    like_chars, _ = await pages(client, url, owner.headers, q="%")
    assert like_chars == []


async def test_my_boards_pages(client):
    me = await make_account(client)
    made = [await create_board(client, me, f"b{i}") for i in range(5)]
    boards, count = await pages(client, f"{API}/boards", me.headers, limit=2)
    assert sorted(b["id"] for b in boards) == sorted(b["id"] for b in made)
    assert count == 3
    assert {b["role"] for b in boards} == {"owner"}


async def test_event_log_pages_by_cursor(client):
    w = await make_world(client)
    owner, observer = w.accounts["owner"], w.accounts["observer"]
    lst = await make_list(client, w.id, owner)
    for i in range(6):
        await make_card(client, lst["id"], owner, f"c{i}")
    seq = (await ok(await client.get(f"{API}/boards/{w.id}", headers=owner.headers)))["seq"]
    url = f"{API}/boards/{w.id}/events"
    events, count = await pages(client, url, observer.headers, limit=4)
    assert [e["seq"] for e in events] == list(range(1, seq + 1))
    assert count == -(-seq // 4)
    # with after_seq: the cursor carries on from where the previous page stopped
    later, _ = await pages(client, url, observer.headers, after_seq=seq - 5, limit=2)
    assert [e["seq"] for e in later] == list(range(seq - 4, seq + 1))
    # next_cursor is the next after_seq: sending it that way gives the same page
    first = await ok(await client.get(url, params={"limit": 3}, headers=owner.headers))
    by_cursor = await ok(
        await client.get(url, params={"limit": 3, "cursor": first["next_cursor"]}, headers=owner.headers)
    )
    by_after = await ok(
        await client.get(url, params={"limit": 3, "after_seq": first["next_cursor"]}, headers=owner.headers)
    )
    assert by_cursor == by_after
    assert [e["seq"] for e in by_cursor["items"]] == [4, 5, 6]
    for bad in ("abc", "-1", "1.5", "9" * 30):
        response = await client.get(url, params={"cursor": bad}, headers=owner.headers)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["field"] == "cursor"
    for bad_limit in (0, 201):
        response = await client.get(url, params={"limit": bad_limit}, headers=owner.headers)
        assert response.status_code == 422


async def test_search_finds_only_what_the_caller_can_see(client):
    alice, bob = await make_account(client), await make_account(client)
    word = "zebra" + alice.id[:6].replace("-", "")
    a_board = await create_board(client, alice, "Alice")
    b_board = await create_board(client, bob, "Bob")
    a_list = await make_list(client, a_board["id"], alice)
    b_list = await make_list(client, b_board["id"], bob)
    a_card = await make_card(client, a_list["id"], alice, f"{word} in alice's board")
    b_card = await make_card(client, b_list["id"], bob, "bob's card", description=f"has a {word} too")
    b_comment = await ok(
        await client.post(
            f"{API}/cards/{b_card['id']}/comments", json={"body": f"{word}!"}, headers=bob.headers
        ),
        201,
    )

    async def hits(who):
        page = await ok(await client.get(f"{API}/search", params={"q": word[:-2]}, headers=who.headers))
        return {(h["kind"], h["card_id"], h.get("comment_id")) for h in page["items"]}, page

    seen, page = await hits(alice)
    assert seen == {("card", a_card["id"], None)}
    assert word in page["items"][0]["snippet"]
    seen, _ = await hits(bob)
    assert seen == {("card", b_card["id"], None), ("comment", b_card["id"], b_comment["id"])}
    # Alice joins Bob's board as an observer: she sees it; removed again: she does not.
    await add_member(client, b_board["id"], bob, alice, "observer")
    seen, _ = await hits(alice)
    assert len(seen) == 3
    await ok(
        await client.delete(f"{API}/boards/{b_board['id']}/members/{alice.id}", headers=bob.headers), 204
    )
    seen, _ = await hits(alice)
    assert seen == {("card", a_card["id"], None)}
    # deleted things disappear from search
    await ok(await client.delete(f"{API}/cards/{a_card['id']}", headers=alice.headers), 204)
    seen, _ = await hits(alice)
    assert seen == set()
    await ok(await client.delete(f"{API}/boards/{b_board['id']}", headers=bob.headers), 204)
    seen, _ = await hits(bob)
    assert seen == set()


async def test_search_pages(client):
    w = await make_world(client)
    owner = w.accounts["owner"]
    lst = await make_list(client, w.id, owner)
    word = "quokka" + w.id[:4]
    for i in range(5):
        await make_card(client, lst["id"], owner, f"{word} {i}")
    found, count = await pages(client, f"{API}/search", owner.headers, q=word, limit=2)
    assert sorted(h["title"] for h in found) == [f"{word} {i}" for i in range(5)]
    assert count == 3


async def test_search_survives_odd_queries(client):
    w = await make_world(client)
    owner = w.accounts["owner"]
    lst = await make_list(client, w.id, owner)
    await make_card(client, lst["id"], owner, "snake_case Ärger co-op 2030 it's", description="x & y | !z")
    for q in [
        "snake_case",
        "ärger",
        "co-op",
        "2030",
        "it's",
        "x & y",
        "!z |",
        "a:* & b",
        '"unbalanced',
        "NEAR(",
        "*",
    ]:
        response = await client.get(f"{API}/search", params={"q": q}, headers=owner.headers)
        assert response.status_code in (200, 422), f"{q!r}: {response.status_code} {response.text}"
    for q in ["snake_case", "ärger", "co-op", "2030"]:
        page = await ok(await client.get(f"{API}/search", params={"q": q}, headers=owner.headers))
        assert len(page["items"]) == 1, q
