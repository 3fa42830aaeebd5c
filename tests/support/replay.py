"""Folding a board's event log into board state, as a client would (pure: no I/O).

``fold(initial, events)`` starts from the empty board (its header as created, no lists, cards,
labels or members) and applies each event's ``data``; the result must equal ``GET /boards/{id}``.
"""

from __future__ import annotations

import copy
from typing import Any

State = dict[str, Any]
COLLECTIONS = {"list": "lists", "card": "cards", "label": "labels"}
DROP_FROM_CARD = {"previous_list_id"}


def empty_board(created: dict[str, Any]) -> State:
    return {**created, "seq": 0, "lists": [], "cards": [], "labels": [], "members": []}


def _upsert(items: list[dict[str, Any]], item: dict[str, Any], key: str = "id") -> None:
    for i, existing in enumerate(items):
        if existing[key] == item[key]:
            items[i] = item
            return
    items.append(item)


def apply(state: State, event: dict[str, Any]) -> State:
    kind, _, action = event["type"].partition(".")
    data = event["data"]
    assert event["seq"] == state["seq"] + 1, f"gap or repeat at {event['seq']} after {state['seq']}"
    state["seq"] = event["seq"]
    if kind == "board":
        if action == "updated":
            state.update({k: v for k, v in data.items() if k in state})
    elif kind == "member":
        if action == "removed":
            state["members"] = [m for m in state["members"] if m["user_id"] != data["user_id"]]
            for card in state["cards"]:
                card["assignee_ids"] = [u for u in card["assignee_ids"] if u != data["user_id"]]
        else:
            _upsert(state["members"], data, "user_id")
    elif kind in COLLECTIONS:
        items = state[COLLECTIONS[kind]]
        if action == "deleted":
            state[COLLECTIONS[kind]] = [x for x in items if x["id"] != data["id"]]
            if kind == "list":
                state["cards"] = [c for c in state["cards"] if c["list_id"] != data["id"]]
            if kind == "label":
                for card in state["cards"]:
                    card["label_ids"] = [x for x in card["label_ids"] if x != data["id"]]
        else:
            _upsert(items, {k: v for k, v in data.items() if k not in DROP_FROM_CARD})
    # comment.* and checklist.* are not part of the board body
    return state


def fold(initial: State, events: list[dict[str, Any]]) -> State:
    state = copy.deepcopy(initial)
    for event in events:
        apply(state, event)
    return state


def normalized(board: State) -> State:
    """Order-independent form: collections sorted by id (ordering is tested on its own)."""
    out = dict(board)
    for name, key in (("lists", "id"), ("cards", "id"), ("labels", "id"), ("members", "user_id")):
        out[name] = sorted(board[name], key=lambda x, k=key: x[k])
    return out
