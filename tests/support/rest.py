"""Boards through REST against a live server, for socket tests (SPEC §2)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.phx import api


def create_board(server: Any, token: str) -> dict[str, Any]:
    with api(server, token) as c:
        r = c.post("/boards", json={"name": "b" + uuid.uuid4().hex[:6]})
        assert r.status_code == 201, r.text
        board: dict[str, Any] = c.get(f"/boards/{r.json()['id']}").json()
        return board


def add_member(server: Any, token: str, board_id: str, user_id: str, role: str = "member") -> None:
    with api(server, token) as c:
        r = c.post(f"/boards/{board_id}/members", json={"user_id": user_id, "role": role})
        assert r.status_code in (200, 201), r.text


def remove_member(server: Any, token: str, board_id: str, user_id: str) -> None:
    with api(server, token) as c:
        r = c.delete(f"/boards/{board_id}/members/{user_id}")
        assert r.status_code in (200, 204), r.text


def create_list(server: Any, token: str, board_id: str, name: str = "todo") -> dict[str, Any]:
    with api(server, token) as c:
        r = c.post(f"/boards/{board_id}/lists", json={"name": name})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


def create_card(server: Any, token: str, list_id: str, title: str = "card") -> dict[str, Any]:
    with api(server, token) as c:
        r = c.post(f"/lists/{list_id}/cards", json={"title": title})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


def event_seqs(server: Any, token: str, board_id: str) -> list[int]:
    with api(server, token) as c:
        r = c.get(f"/boards/{board_id}/events", params={"after_seq": 0, "limit": 200})
        assert r.status_code == 200, r.text
        return [e["seq"] for e in r.json()["items"]]


def current_seq(server: Any, token: str, board_id: str) -> int:
    with api(server, token) as c:
        seq: int = c.get(f"/boards/{board_id}").json()["seq"]
        return seq


async def all_events(http: Any, board_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every event of the board's log, page by page (an ``httpx.AsyncClient`` on a live server)."""
    events: list[dict[str, Any]] = []
    cursor: str | None = "0"
    while cursor is not None:
        r = await http.get(
            f"/api/v1/boards/{board_id}/events", params={"after_seq": cursor, "limit": 200}, headers=headers
        )
        assert r.status_code == 200, r.text
        events.extend(r.json()["items"])
        cursor = r.json()["next_cursor"]
    return events
