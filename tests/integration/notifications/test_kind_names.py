"""Membership has one name everywhere: member.added / member.removed (docs/notifications.md "Changes")."""

from __future__ import annotations

from tests.support.factories import make_account

PREFS = "/api/v1/notifications/preferences"


async def test_membership_kinds_are_named_like_the_events(client):
    alice = await make_account(client)
    prefs = (await client.get(PREFS, headers=alice.headers)).json()["preferences"]
    assert {"member.added", "member.removed"} <= set(prefs)
    assert not any(kind.startswith("board.") for kind in prefs)


async def test_the_old_kind_names_are_still_read(client):
    alice = await make_account(client)
    answer = await client.put(
        PREFS, json={"preferences": {"board.member_added": "off"}}, headers=alice.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["preferences"]["member.added"] == "off"
    assert "board.member_added" not in answer.json()["preferences"]
