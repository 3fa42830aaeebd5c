"""Ordinary changes racing each other through real server processes: every answer is a success or
the right 4xx (never a 500), nothing is half-written, and the log has exactly one event per
success.

On PostgreSQL two server workers share the database and every change is checked to have waited
in line rather than deadlocked (the server logs each retried deadlock); on the embedded default
(SQLite) one process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from persistence.db import create_engine
from server.settings import load_settings
from tests.support.factories import PASSWORD, unique_name
from tests.support.live import LiveServer
from tests.support.replay import empty_board, fold, normalized

API = "/api/v1"
ROUNDS = 5
pytestmark = pytest.mark.timeout(600)


@dataclass
class Live:
    http: httpx.AsyncClient
    headers: dict[str, str]
    env: dict[str, str]
    log: Path
    postgres: bool


@pytest.fixture
async def live(backend_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Live]:
    postgres = "DATABASE_URL" in backend_env
    # INFO: the server logs every change it runs again after a deadlock (board.change.retry)
    log = tmp_path / "server.log"
    server = LiveServer({**backend_env, "LOG_LEVEL": "INFO"}, workers=2 if postgres else 1, log_path=log)
    server.start(timeout=180)  # a loaded shared machine can take a while to import and migrate
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
        name = unique_name()
        r = await http.post(
            f"{API}/auth/register",
            json={"email": f"{name}@example.test", "username": name, "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        r = await http.post(f"{API}/auth/login", json={"login": name, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        try:
            yield Live(http, headers, backend_env, log, postgres)
        finally:
            server.stop()


async def _make(live: Live, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await live.http.post(API + path, json=body, headers=live.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


class Race:
    """Requests sent at once; each answer must be one of its allowed statuses."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.calls: list[tuple[str, str, Awaitable[httpx.Response], set[int]]] = []
        self.answers: list[tuple[str, int, str]] = []

    def add(self, method: str, path: str, allowed: set[int], body: Any = None) -> None:
        request = self.live.http.request(method, API + path, json=body, headers=self.live.headers)
        self.calls.append((method, path, request, allowed))

    async def run(self) -> int:
        """Send every request at once; the number of successes (each must have one event)."""
        responses = await asyncio.gather(*(call[2] for call in self.calls))
        wrong = []
        for (method, path, _, allowed), r in zip(self.calls, responses, strict=True):
            self.answers.append((f"{method} {path}", r.status_code, r.text[:300]))
            if r.status_code not in allowed:
                wrong.append(self.answers[-1])
        assert not wrong, wrong
        return sum(r.status_code < 300 for r in responses)


async def _events(live: Live, board_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor: str | None = "0"
    while cursor is not None:
        r = await live.http.get(
            f"{API}/boards/{board_id}/events",
            params={"after_seq": cursor, "limit": 200},
            headers=live.headers,
        )
        assert r.status_code == 200, r.text
        events.extend(r.json()["items"])
        cursor = r.json()["next_cursor"]
    return events


async def _board(live: Live, board_id: str) -> dict[str, Any]:
    r = await live.http.get(f"{API}/boards/{board_id}", headers=live.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _check_log(live: Live, board: dict[str, Any], seq_before: int, successes: int) -> dict[str, Any]:
    """One event per success, gapless, folding to the board as it is."""
    now = await _board(live, board["id"])
    events = await _events(live, board["id"])
    assert now["seq"] == seq_before + successes
    assert [e["seq"] for e in events] == list(range(1, now["seq"] + 1))
    assert normalized(fold(empty_board(board), events)) == normalized(now)
    return now


def _assert_no_deadlock(live: Live) -> None:
    """No change ran into a deadlock and had to be run again: the writers lock in one order."""
    retried = [line for line in live.log.read_text().splitlines() if "deadlock" in line]
    assert not retried, retried[:3]


async def _rows(live: Live, sql: str, **params: Any) -> int:
    engine = create_engine(load_settings(live.env).effective_database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql), params)).scalar_one())
    finally:
        await engine.dispose()


async def test_children_of_a_card_being_deleted(live: Live) -> None:
    """Comments and checklist items created, edited and deleted while the card is deleted (twice):
    each is a success or a 404, exactly one delete succeeds, nothing is left under the card."""
    board = await _make(live, "/boards", {"name": "card delete"})
    lists = [await _make(live, f"/boards/{board['id']}/lists", {"name": n}) for n in ("a", "b")]
    for _ in range(ROUNDS):
        card = await _make(live, f"/lists/{lists[0]['id']}/cards", {"title": "doomed"})
        cid = card["id"]
        comment = await _make(live, f"/cards/{cid}/comments", {"body": "first"})
        other = await _make(live, f"/cards/{cid}/comments", {"body": "second"})
        item = await _make(live, f"/cards/{cid}/checklist", {"text": "first"})
        seq_before = (await _board(live, board["id"]))["seq"]
        race = Race(live)
        for n in range(3):
            race.add("POST", f"/cards/{cid}/comments", {201, 404}, {"body": f"c{n}"})
            race.add("POST", f"/cards/{cid}/checklist", {201, 404}, {"text": f"i{n}"})
        race.add("PATCH", f"/comments/{comment['id']}", {200, 404}, {"body": "edited"})
        race.add("DELETE", f"/comments/{other['id']}", {204, 404})
        race.add("PATCH", f"/checklist-items/{item['id']}", {200, 404}, {"done": True})
        race.add("PATCH", f"/cards/{cid}", {200, 404}, {"title": "renamed", "archived": True})
        race.add("POST", f"/cards/{cid}/move", {200, 404}, {"list_id": lists[1]["id"]})
        race.add("DELETE", f"/cards/{cid}", {204, 404})
        race.add("DELETE", f"/cards/{cid}", {204, 404})
        successes = await race.run()
        assert [status for what, status, _ in race.answers if what == f"DELETE /cards/{cid}"].count(204) == 1
        r = await live.http.get(f"{API}/cards/{cid}", headers=live.headers)
        assert r.status_code == 404
        await _check_log(live, board, seq_before, successes)
        for table in ("comments", "checklist_items", "mentions"):
            assert await _rows(live, f"SELECT count(*) FROM {table} WHERE card_id = :c", c=cid) == 0
    _assert_no_deadlock(live)


async def test_board_deleted_while_written(live: Live) -> None:
    """The owner deletes the board while its content is written: the delete succeeds, every other
    change succeeds or is a 404, and nothing of the board is left."""
    tables = ("lists", "cards", "comments", "checklist_items", "labels", "board_members", "board_events")
    for _ in range(ROUNDS):
        board = await _make(live, "/boards", {"name": "doomed"})
        bid = board["id"]
        lists = [await _make(live, f"/boards/{bid}/lists", {"name": n}) for n in ("a", "b")]
        cards = [await _make(live, f"/lists/{lists[0]['id']}/cards", {"title": f"c{n}"}) for n in range(3)]
        comment = await _make(live, f"/cards/{cards[0]['id']}/comments", {"body": "hi"})
        race = Race(live)
        for n, card in enumerate(cards):
            race.add("POST", f"/lists/{lists[n % 2]['id']}/cards", {201, 404}, {"title": f"new{n}"})
            race.add("POST", f"/cards/{card['id']}/comments", {201, 404}, {"body": f"b{n}"})
            race.add("POST", f"/cards/{card['id']}/checklist", {201, 404}, {"text": f"t{n}"})
        race.add("PATCH", f"/cards/{cards[0]['id']}", {200, 404}, {"title": "renamed"})
        race.add("POST", f"/cards/{cards[1]['id']}/move", {200, 404}, {"list_id": lists[1]["id"]})
        race.add("DELETE", f"/cards/{cards[2]['id']}", {204, 404})
        race.add("PATCH", f"/comments/{comment['id']}", {200, 404}, {"body": "edited"})
        race.add(
            "PATCH", f"/lists/{lists[1]['id']}", {200, 404}, {"name": "renamed", "before_id": lists[0]["id"]}
        )
        race.add("POST", f"/boards/{bid}/lists", {201, 404}, {"name": "c"})
        race.add("POST", f"/boards/{bid}/labels", {201, 404}, {"color": "red"})
        race.add("DELETE", f"/boards/{bid}", {204})
        await race.run()
        r = await live.http.get(f"{API}/boards/{bid}", headers=live.headers)
        assert r.status_code == 404
        for table in tables:
            assert await _rows(live, f"SELECT count(*) FROM {table} WHERE board_id = :b", b=bid) == 0
    _assert_no_deadlock(live)


async def test_drops_into_the_same_gap(live: Live) -> None:
    """Clients create and move cards and lists between the same two neighbours at once: they all
    succeed, each lands between those two, and every position stays unique."""
    board = await _make(live, "/boards", {"name": "one gap"})
    bid = board["id"]
    for _ in range(ROUNDS):
        left, right = [await _make(live, f"/boards/{bid}/lists", {"name": n}) for n in ("left", "right")]
        spare = [await _make(live, f"/boards/{bid}/lists", {"name": f"spare{n}"}) for n in range(2)]
        first, last = [
            await _make(live, f"/lists/{left['id']}/cards", {"title": n}) for n in ("first", "last")
        ]
        movers = [await _make(live, f"/lists/{right['id']}/cards", {"title": f"m{n}"}) for n in range(3)]
        seq_before = (await _board(live, bid))["seq"]
        gap = {"after_id": first["id"], "before_id": last["id"]}
        list_gap = {"after_id": left["id"], "before_id": right["id"]}
        race = Race(live)
        for n in range(4):
            race.add("POST", f"/lists/{left['id']}/cards", {201}, {"title": f"new{n}", **gap})
            race.add("POST", f"/boards/{bid}/lists", {201}, {"name": f"new{n}", **list_gap})
        for mover in movers:
            race.add("POST", f"/cards/{mover['id']}/move", {200}, {"list_id": left["id"], **gap})
        for lst in spare:
            race.add("PATCH", f"/lists/{lst['id']}", {200}, list_gap)
        successes = await race.run()
        now = await _check_log(live, board, seq_before, successes)
        in_left = sorted(c["position"] for c in now["cards"] if c["list_id"] == left["id"])
        assert len(in_left) == len(set(in_left)) == 2 + 4 + len(movers)
        assert in_left[0] == first["position"]
        assert in_left[-1] == last["position"]
        positions = sorted(lst["position"] for lst in now["lists"])
        assert len(positions) == len(set(positions))
        between = [lst for lst in now["lists"] if left["position"] < lst["position"] < right["position"]]
        assert len(between) == 4 + len(spare)
    _assert_no_deadlock(live)


async def test_member_removed_and_label_deleted_while_their_cards_are_deleted(
    live: Live, request: pytest.FixtureRequest
) -> None:
    """A member removed and a label deleted while cards assigned to them / carrying it are deleted
    (found by the churn run, bench/churn.py): every answer a success, each success one event.

    PostgreSQL deadlocks today: a card delete locks the card, its cascade locks the card's
    card_assignees/card_labels rows, and then it waits for the board row; the member removal and
    the label deletion hold the board row and then wait for those same rows (their unassign and
    cascade). They answer 500. Strict xfail: it fails the day that is fixed, to be removed then.
    """
    if live.postgres:
        request.applymarker(pytest.mark.xfail(strict=True, reason="deadlock: board row, then cards' rows"))
    name = unique_name()
    r = await live.http.post(
        f"{API}/auth/register", json={"email": f"{name}@example.test", "username": name, "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    board = await _make(live, "/boards", {"name": "unassign"})
    lst = await _make(live, f"/boards/{board['id']}/lists", {"name": "a"})
    for _ in range(2 * ROUNDS):  # about one round in two deadlocked: never none in ten
        await _make(live, f"/boards/{board['id']}/members", {"user_id": user_id, "role": "member"})
        label = await _make(live, f"/boards/{board['id']}/labels", {"color": "red"})
        body = {"title": "doomed", "assignee_ids": [user_id], "label_ids": [label["id"]]}
        cards = [await _make(live, f"/lists/{lst['id']}/cards", body) for _ in range(6)]
        seq_before = (await _board(live, board["id"]))["seq"]
        race = Race(live)
        for card in cards[:2]:
            race.add("DELETE", f"/cards/{card['id']}", {204})
        race.add("DELETE", f"/boards/{board['id']}/members/{user_id}", {204})
        race.add("DELETE", f"/labels/{label['id']}", {204})
        for card in cards[2:4]:
            race.add("DELETE", f"/cards/{card['id']}", {204})
        assert await race.run() == 6
        now = await _check_log(live, board, seq_before, 6)
        assert all(not c["assignee_ids"] and not c["label_ids"] for c in now["cards"])
