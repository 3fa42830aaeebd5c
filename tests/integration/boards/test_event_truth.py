"""Event truth (SPEC §6): every event's ``data``, and every REST answer, is the committed state
right after its change, so folding the log equals ``GET /boards/{id}`` field for field.

The hazard is a card change that waits (for the card's row lock, or for the board's seq) while
another change alters the card's relations: an assignee change on the card itself, a member
removal that unassigns, a label deletion that unlabels. A dozen concurrent moves of one card race
one such change, several rounds; on PostgreSQL with two server processes, on SQLite with one.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.boards import add_member, create_board, get_board, ok
from tests.support.factories import PASSWORD, make_account, make_admin, unique_name
from tests.support.replay import empty_board, fold, normalized
from tests.support.rest import all_events

MOVES = 12  # of each card
CARDS = 3
ROUNDS = 3
RELATION_CHANGES = ("unassign", "remove_member", "delete_label")
pytestmark = pytest.mark.timeout(300)


async def _account(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    name = unique_name()
    r = await http.post(
        "/api/v1/auth/register",
        json={"email": f"{name}@example.test", "username": name, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    r = await http.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return user_id, {"Authorization": f"Bearer {r.json()['access_token']}"}


def _card_state(data: dict) -> dict:
    """A card as the board shows it (an event's or an answer's extra fields left out)."""
    return {k: v for k, v in data.items() if k not in ("previous_list_id", "checklist")}


async def _round(http: httpx.AsyncClient, owner: str, headers: dict[str, str], change: str) -> None:
    board = (await http.post("/api/v1/boards", json={"name": change}, headers=headers)).json()
    board_id = board["id"]
    member, _ = await _account(http)
    r = await http.post(
        f"/api/v1/boards/{board_id}/members", json={"user_id": member, "role": "member"}, headers=headers
    )
    assert r.status_code == 201, r.text
    labels = []
    for colour in ("red", "blue"):
        r = await http.post(
            f"/api/v1/boards/{board_id}/labels", json={"name": colour, "color": colour}, headers=headers
        )
        assert r.status_code == 201, r.text
        labels.append(r.json()["id"])
    lists = []
    for name in ("a", "b"):
        r = await http.post(f"/api/v1/boards/{board_id}/lists", json={"name": name}, headers=headers)
        lists.append(r.json()["id"])
    cards = []
    for n in range(CARDS):
        r = await http.post(
            f"/api/v1/lists/{lists[0]}/cards",
            json={"title": f"t{n}", "assignee_ids": [owner, member], "label_ids": labels},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        cards.append(r.json())

    answers: list[dict] = []
    stale: list[dict] = []  # the ``current`` of each 409

    async def move(i: int) -> None:
        card = cards[i % CARDS]
        body = {"list_id": lists[i // CARDS % 2]}
        if i // CARDS % 2:  # based on the card as created: a 409 once any other change is in
            body["version"] = card["version"]
        r = await http.post(f"/api/v1/cards/{card['id']}/move", json=body, headers=headers)
        if r.status_code == 409:
            stale.append(r.json()["current"])
            return
        assert r.status_code == 200, r.text
        answers.append(r.json())

    async def relation_change() -> None:
        if change == "unassign":
            r = await http.patch(
                f"/api/v1/cards/{cards[0]['id']}", json={"assignee_ids": [owner]}, headers=headers
            )
            assert r.status_code == 200, r.text
            answers.append(r.json())
        elif change == "remove_member":
            r = await http.delete(f"/api/v1/boards/{board_id}/members/{member}", headers=headers)
            assert r.status_code == 204, r.text
        else:
            r = await http.delete(f"/api/v1/labels/{labels[0]}", headers=headers)
            assert r.status_code == 204, r.text

    # all at once: every card has a move holding its lock while the relations change
    await asyncio.gather(relation_change(), *(move(i) for i in range(MOVES * CARDS)))

    board_now = (await http.get(f"/api/v1/boards/{board_id}", headers=headers)).json()
    events = await all_events(http, board_id, headers)
    card_events = [e for e in events if e["type"].startswith("card.")]
    by_version = {(e["data"]["id"], e["data"]["version"]): _card_state(e["data"]) for e in card_events}
    for n, created in enumerate(cards):
        card = (await http.get(f"/api/v1/cards/{created['id']}", headers=headers)).json()
        # the relation change took effect
        if change == "delete_label":
            assert card["label_ids"] == [labels[1]]
        elif change == "remove_member" or n == 0:
            assert card["assignee_ids"] == [owner]
        # the card's last event, and the answer of its last change, are the card as it is now
        assert _card_state([e for e in card_events if e["data"]["id"] == card["id"]][-1]["data"]) == (
            _card_state(card)
        )
        last_answer = max((a for a in answers if a["id"] == card["id"]), key=lambda a: a["version"])
        assert _card_state(last_answer) == _card_state(card)
    # every answer is the event of its change (one version each)
    for answer in answers:
        assert _card_state(answer) == by_version[answer["id"], answer["version"]]
    # and a 409 shows the card as some change left it
    assert stale
    for current in stale:
        assert _card_state(current) == by_version[current["id"], current["version"]]
    # a client folding the log sees the board as GET shows it
    assert normalized(fold(empty_board(board), events)) == normalized(board_now)


async def test_card_events_carry_the_committed_relations(backend_env, live_server_factory):
    workers = 2 if "DATABASE_URL" in backend_env else 1
    server = live_server_factory(backend_env, workers=workers)
    # fewer requests at once than a worker's database pool holds (15), so none waits for a connection
    limits = httpx.Limits(max_connections=14)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
        owner, headers = await _account(http)
        failed: list[str] = []  # every kind of change is tried, however an earlier one fared
        for round_ in range(ROUNDS):
            for change in RELATION_CHANGES:
                try:
                    await _round(http, owner, headers, change)
                except AssertionError as exc:
                    failed.append(f"round {round_}, {change}: {str(exc).splitlines()[0]}")
        assert not failed, "\n".join(failed)


async def test_a_renamed_member_is_announced_on_each_board(client, settings):
    """A member's username and display name are part of the board (``members``): renaming
    oneself, or an admin renaming a user, is a ``member.updated`` on every board of theirs."""
    owner, member = await make_account(client), await make_account(client)
    admin = await make_admin(client, settings)
    boards = [await create_board(client, owner, name) for name in ("one", "two")]
    for board in boards:
        await add_member(client, board["id"], owner, member, "member")
    await ok(
        await client.patch(
            "/api/v1/users/me",
            json={"username": unique_name("renamed"), "display_name": "New Name"},
            headers=member.headers,
        )
    )
    await ok(
        await client.patch(
            f"/api/v1/users/{member.id}", json={"display_name": "Admin Named"}, headers=admin.headers
        )
    )
    for board in boards:
        now = await get_board(client, board["id"], owner)
        assert {m["display_name"] for m in now["members"] if m["user_id"] == member.id} == {"Admin Named"}
        events = await all_events(client, board["id"], owner.headers)
        assert [e["type"] for e in events[-2:]] == ["member.updated", "member.updated"]
        assert normalized(fold(empty_board(board), events)) == normalized(now)
