"""The client fold rules (docs/realtime.md, "Folding events into a board"; bench/fold.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.fold import FOLD, BoardCopy, apply, dangling, normalized

T = "2026-01-01T00:00:00Z"
B, L1, L2, C1, C2, U1, U2, X1, K1, I1 = "b", "l1", "l2", "c1", "c2", "u1", "u2", "x1", "k1", "i1"


def card(id: str, list_id: str, *, assignees: list[str] = (), labels: list[str] = (), v: int = 1) -> Any:
    return {
        "id": id, "board_id": B, "list_id": list_id, "title": id, "description": "", "position": "a0",
        "due_at": None, "archived": False, "assignee_ids": list(assignees), "label_ids": list(labels),
        "created_by": U1, "version": v, "created_at": T, "updated_at": T,
    }  # fmt: skip


def board() -> BoardCopy:
    body = {
        "id": B, "name": "b", "description": "", "version": 1, "created_at": T, "updated_at": T, "seq": 10,
        "lists": [{"id": L1, "board_id": B, "name": "l", "position": "a0", "archived": False, "version": 1,
                   "created_at": T, "updated_at": T},
                  {"id": L2, "board_id": B, "name": "m", "position": "a1", "archived": False, "version": 1,
                   "created_at": T, "updated_at": T}],
        "cards": [card(C1, L1, assignees=[U1, U2], labels=[X1]), card(C2, L2, assignees=[U2], labels=[X1])],
        "labels": [{"id": X1, "board_id": B, "name": "", "color": "red", "version": 1, "created_at": T,
                    "updated_at": T}],
        "members": [{"user_id": u, "board_id": B, "username": u, "display_name": u, "role": "member",
                     "version": 1, "created_at": T} for u in (U1, U2)],
    }  # fmt: skip
    comment = {"id": K1, "board_id": B, "card_id": C1, "body": "x", "version": 1}
    item = {"id": I1, "board_id": B, "card_id": C1, "text": "x", "done": False, "version": 1}
    return BoardCopy.from_body(body, [comment], [item])


def event(type_: str, data: dict[str, Any], seq: int = 11) -> dict[str, Any]:
    return {"seq": seq, "type": type_, "board_id": B, "actor_id": U1, "at": T, "data": data}


def test_every_event_type_of_the_spec_has_a_rule() -> None:
    spec = {
        f"{kind}.{action}"
        for kind, actions in {
            "board": "updated deleted", "member": "added updated removed",
            "label": "created updated deleted", "list": "created updated moved archived deleted",
            "card": "created updated moved archived deleted", "comment": "created updated deleted",
            "checklist": "created updated deleted",
        }.items()
        for action in actions.split()
    }  # fmt: skip
    assert set(FOLD) == spec


def test_member_removed_unassigns_them_from_every_card() -> None:
    b = board()
    apply(b, event("member.removed", {"id": U2, "board_id": B, "user_id": U2}))
    assert set(b.members) == {U1}
    assert b.cards[C1]["assignee_ids"] == [U1]
    assert b.cards[C2]["assignee_ids"] == []
    assert b.seq == 11


def test_label_deleted_comes_off_every_card() -> None:
    b = board()
    apply(b, event("label.deleted", {"id": X1, "board_id": B}))
    assert b.labels == {}
    assert [c["label_ids"] for c in b.cards.values()] == [[], []]


def test_list_deleted_takes_its_cards_their_comments_and_checklist_items() -> None:
    b = board()
    apply(b, event("list.deleted", {"id": L1, "board_id": B}))
    assert set(b.lists) == {L2}
    assert set(b.cards) == {C2}
    assert b.comments == {}
    assert b.checklist == {}


def test_card_moved_replaces_the_card_without_previous_list_id() -> None:
    b = board()
    moved = {**card(C1, L2, assignees=[U1, U2], labels=[X1], v=2), "previous_list_id": L1}
    assert dangling(b, event("card.moved", moved)) == []
    apply(b, event("card.moved", moved))
    assert b.cards[C1] == card(C1, L2, assignees=[U1, U2], labels=[X1], v=2)
    assert normalized(b.body())["cards"][C1]["list_id"] == L2


@pytest.mark.parametrize(
    ("before", "data", "names"),
    [
        ("member.removed", card(C1, L1, assignees=[U2], v=2), "assignee u2"),
        ("label.deleted", card(C1, L1, labels=[X1], v=2), "label x1"),
        ("list.deleted", card(C2, L2, v=2), "list l2"),
    ],
)
def test_a_card_event_naming_what_was_removed_dangles(before: str, data: dict[str, Any], names: str) -> None:
    b = board()
    removed = {
        "member.removed": {"id": U2, "user_id": U2},
        "label.deleted": {"id": X1},
        "list.deleted": {"id": L2},
    }
    apply(b, event(before, {**removed[before], "board_id": B}))
    problems = dangling(b, event("card.updated", data, seq=12))
    assert any(names in p for p in problems), problems


def test_a_comment_on_a_deleted_card_and_a_skipped_version_dangle() -> None:
    b = board()
    apply(b, event("card.deleted", {"id": C1, "board_id": B, "list_id": L1}))
    assert b.comments == {}
    comment = {"id": "k2", "board_id": B, "card_id": C1, "body": "y", "version": 1}
    assert dangling(b, event("comment.created", comment, seq=12))
    assert dangling(b, event("card.updated", card(C2, L2, assignees=[U2], labels=[X1], v=3), seq=12))
    assert not dangling(b, event("card.updated", card(C2, L2, assignees=[U2], labels=[X1], v=2), seq=12))


def test_a_renamed_members_update_keeps_the_version() -> None:
    b = board()
    renamed = {**b.members[U1], "display_name": "new name"}
    assert dangling(b, event("member.updated", renamed)) == []
    assert dangling(b, event("member.updated", {**renamed, "version": 3}))
    apply(b, event("member.updated", renamed))
    assert b.members[U1]["display_name"] == "new name"
