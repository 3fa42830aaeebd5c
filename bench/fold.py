"""The client fold: a board copy kept up to date from the board's events (docs/realtime.md,
"Folding events into a board"). This module is the reference for those rules.

A :class:`BoardCopy` starts from ``GET /boards/{id}`` (or a join's ``snapshot``), or from the empty
board; :func:`apply` folds one event envelope into it through :data:`FOLD`, one function per event
type. :func:`dangling` names what an event refers to that the copy no longer has (a card event
naming a removed assignee, a deleted label or list; a comment or checklist event on a deleted
card): after a correct fold of truthful events it is always empty.

Comments and checklist items are not part of the board body; a client that shows them keeps them
beside it (``comments`` and ``checklist``, keyed by id) from ``GET /cards/{id}`` and
``GET /cards/{id}/comments``, and folds their events the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Item = dict[str, Any]
HEADER = ("id", "name", "description", "version", "created_at", "updated_at")


@dataclass
class BoardCopy:
    """One client's copy of a board: the header, ``seq``, and each collection keyed by id."""

    header: Item
    seq: int = 0
    lists: dict[str, Item] = field(default_factory=dict)
    cards: dict[str, Item] = field(default_factory=dict)
    labels: dict[str, Item] = field(default_factory=dict)
    members: dict[str, Item] = field(default_factory=dict)  # by user_id
    comments: dict[str, Item] = field(default_factory=dict)
    checklist: dict[str, Item] = field(default_factory=dict)
    deleted: bool = False

    @classmethod
    def from_body(
        cls, body: Item, comments: Iterable[Item] = (), checklist: Iterable[Item] = ()
    ) -> BoardCopy:
        """The copy of a ``GET /boards/{id}`` body (or a join's ``snapshot``) at its ``seq``."""
        return cls(
            header={k: body[k] for k in HEADER},
            seq=int(body.get("seq", 0)),
            lists={x["id"]: dict(x) for x in body.get("lists", [])},
            cards={x["id"]: _card(x) for x in body.get("cards", [])},
            labels={x["id"]: dict(x) for x in body.get("labels", [])},
            members={x["user_id"]: dict(x) for x in body.get("members", [])},
            comments={x["id"]: dict(x) for x in comments},
            checklist={x["id"]: dict(x) for x in checklist},
        )

    def body(self) -> Item:
        """The copy in the shape of ``GET /boards/{id}``, collections in the server's order."""
        return {
            **self.header,
            "seq": self.seq,
            "lists": sorted(self.lists.values(), key=lambda x: x["position"]),
            "cards": sorted(self.cards.values(), key=lambda x: (x["list_id"], x["position"])),
            "labels": sorted(self.labels.values(), key=lambda x: (_time(x["created_at"]), x["id"])),
            "members": sorted(self.members.values(), key=lambda x: (_time(x["created_at"]), x["user_id"])),
        }


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _card(data: Item) -> Item:
    """A card as the board body holds it: ``card.moved``'s ``previous_list_id`` is not a field."""
    return {k: v for k, v in data.items() if k != "previous_list_id"}


def _drop_cards(board: BoardCopy, card_ids: set[str]) -> None:
    """Cards gone, and their comments and checklist items with them."""
    for card_id in card_ids:
        board.cards.pop(card_id, None)
    board.comments = {k: v for k, v in board.comments.items() if v["card_id"] not in card_ids}
    board.checklist = {k: v for k, v in board.checklist.items() if v["card_id"] not in card_ids}


# One function per event type: what it changes in the copy (``data`` is the event's ``data``).


def board_updated(board: BoardCopy, data: Item) -> None:
    board.header = {k: data[k] for k in HEADER}


def board_deleted(board: BoardCopy, data: Item) -> None:
    board.deleted = True
    board.lists, board.cards, board.labels, board.members = {}, {}, {}, {}
    board.comments, board.checklist = {}, {}


def member_put(board: BoardCopy, data: Item) -> None:
    board.members[data["user_id"]] = dict(data)


def member_removed(board: BoardCopy, data: Item) -> None:
    user_id = data["user_id"]
    board.members.pop(user_id, None)
    for card in board.cards.values():  # unassigned from every card of the board, with no card event
        if user_id in card["assignee_ids"]:
            card["assignee_ids"] = [u for u in card["assignee_ids"] if u != user_id]


def label_put(board: BoardCopy, data: Item) -> None:
    board.labels[data["id"]] = dict(data)


def label_deleted(board: BoardCopy, data: Item) -> None:
    label_id = data["id"]
    board.labels.pop(label_id, None)
    for card in board.cards.values():  # off every card, with no card event
        if label_id in card["label_ids"]:
            card["label_ids"] = [x for x in card["label_ids"] if x != label_id]


def list_put(board: BoardCopy, data: Item) -> None:
    board.lists[data["id"]] = dict(data)  # archiving a list leaves its cards' own flags alone


def list_deleted(board: BoardCopy, data: Item) -> None:
    board.lists.pop(data["id"], None)
    _drop_cards(board, {c["id"] for c in board.cards.values() if c["list_id"] == data["id"]})


def card_put(board: BoardCopy, data: Item) -> None:
    board.cards[data["id"]] = _card(data)


def card_deleted(board: BoardCopy, data: Item) -> None:
    _drop_cards(board, {data["id"]})


def comment_put(board: BoardCopy, data: Item) -> None:
    board.comments[data["id"]] = dict(data)


def comment_deleted(board: BoardCopy, data: Item) -> None:
    board.comments.pop(data["id"], None)


def checklist_put(board: BoardCopy, data: Item) -> None:
    board.checklist[data["id"]] = dict(data)


def checklist_deleted(board: BoardCopy, data: Item) -> None:
    board.checklist.pop(data["id"], None)


FOLD: dict[str, Callable[[BoardCopy, Item], None]] = {
    "board.updated": board_updated,
    "board.deleted": board_deleted,
    "member.added": member_put,
    "member.updated": member_put,
    "member.removed": member_removed,
    "label.created": label_put,
    "label.updated": label_put,
    "label.deleted": label_deleted,
    "list.created": list_put,
    "list.updated": list_put,
    "list.moved": list_put,
    "list.archived": list_put,
    "list.deleted": list_deleted,
    "card.created": card_put,
    "card.updated": card_put,
    "card.moved": card_put,
    "card.archived": card_put,
    "card.deleted": card_deleted,
    "comment.created": comment_put,
    "comment.updated": comment_put,
    "comment.deleted": comment_deleted,
    "checklist.created": checklist_put,
    "checklist.updated": checklist_put,
    "checklist.deleted": checklist_deleted,
}


def apply(board: BoardCopy, event: Item) -> None:
    """Fold one event envelope into ``board`` (the caller checks that ``seq`` is the next one)."""
    FOLD[event["type"]](board, event["data"])
    board.seq = int(event["seq"])


def dangling(board: BoardCopy, event: Item) -> list[str]:
    """What ``event`` names that ``board`` (the copy just before it) does not have.

    A card event's list, assignees and labels must exist; ``card.moved``'s ``previous_list_id`` is
    the list the card was in; a comment or checklist event's card must exist; an update of a
    resource the copy has must carry the next ``version``.
    """
    kind, _, action = event["type"].partition(".")
    data = event["data"]
    out: list[str] = []
    if kind == "card" and action != "deleted":
        if data["list_id"] not in board.lists:
            out.append(f"list {data['list_id']} (not on the board)")
        out += [f"assignee {u} (not a member)" for u in data["assignee_ids"] if u not in board.members]
        out += [f"label {x} (not on the board)" for x in data["label_ids"] if x not in board.labels]
        before = board.cards.get(data["id"])
        if action == "moved" and before is not None and before["list_id"] != data["previous_list_id"]:
            out.append(f"previous_list_id {data['previous_list_id']} (the card was in {before['list_id']})")
    if kind in ("comment", "checklist") and data["card_id"] not in board.cards:
        out.append(f"card {data['card_id']} (not on the board)")
    if action in ("updated", "moved", "archived"):
        known = {
            "board": {board.header["id"]: board.header},
            "member": board.members,
            "label": board.labels,
            "list": board.lists,
            "card": board.cards,
            "comment": board.comments,
            "checklist": board.checklist,
        }[kind].get(data["user_id"] if kind == "member" else data["id"])
        # a renamed user's member.updated keeps the membership's version (it did not change)
        allowed = (
            {known["version"] + 1} | ({known["version"]} if kind == "member" else set()) if known else set()
        )
        if known is not None and data["version"] not in allowed:
            out.append(f"version {data['version']} after {known['version']}")
    return [f"{event['type']} seq {event['seq']} names {x}" for x in out]


def normalized(body: Item) -> Item:
    """A board body with its collections keyed by id: their order is derived (by ``position``
    for lists and cards), so two bodies are equal when these are."""
    out = {k: v for k, v in body.items() if k not in ("lists", "cards", "labels", "members")}
    for name, key in (("lists", "id"), ("cards", "id"), ("labels", "id"), ("members", "user_id")):
        out[name] = {x[key]: _card(x) if name == "cards" else x for x in body.get(name, [])}
    return out


def differences(expected: Any, actual: Any, path: str = "", limit: int = 10) -> list[str]:
    """Where two JSON values differ (at most ``limit`` paths)."""
    out: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                if key not in a:
                    out.append(f"{at}/{key}: unexpected {str(b[key])[:160]}")
                elif key not in b:
                    out.append(f"{at}/{key}: missing (expected {str(a[key])[:160]})")
                else:
                    walk(a[key], b[key], f"{at}/{key}")
        elif a != b:
            out.append(f"{at}: expected {str(a)[:160]}, got {str(b)[:160]}")

    walk(expected, actual, path)
    return out
