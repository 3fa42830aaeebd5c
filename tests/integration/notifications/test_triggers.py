"""Notifications made by board activity, over HTTP: never for one's own action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.notifications import boards_http as b
from tests.integration.notifications.conftest import in_app
from tests.support.factories import make_account


async def test_membership_assignment_mentions_and_comments(nclient):
    alice, bob, carol, dave = [await make_account(nclient) for _ in range(4)]
    board_id = await b.board(nclient, alice)
    for who in (bob, carol, dave):
        await b.add_member(nclient, board_id, alice, who)
    assert await b.kinds(nclient, alice) == []
    assert await b.kinds(nclient, bob) == ["member.added"]
    added = (await b.notifications(nclient, bob))[0]
    assert added["board_id"] == board_id
    assert added["actor_id"] == alice.id
    assert added["data"]["board_name"] == "Launch"

    list_id = await b.a_list(nclient, board_id, alice)
    card = await b.card(nclient, list_id, alice, assignee_ids=[alice.id, bob.id])
    assert await b.kinds(nclient, alice) == []  # she assigned herself: nothing
    assert await b.kinds(nclient, bob) == ["card.assigned", "member.added"]
    # editing the assignees notifies only the newly added one
    patched = await nclient.patch(
        f"/api/v1/cards/{card['id']}",
        json={"assignee_ids": [alice.id, bob.id, carol.id]},
        headers=alice.headers,
    )
    assert patched.status_code == 200, patched.text
    assert await b.kinds(nclient, bob) == ["card.assigned", "member.added"]
    assert await b.kinds(nclient, carol) == ["card.assigned", "member.added"]

    # dave watches; alice mentions bob: bob is mentioned (once);
    # carol (assignee) and dave (watcher) see a comment
    assert (await nclient.post(f"/api/v1/cards/{card['id']}/watch", headers=dave.headers)).json()[
        "watching"
    ] is True
    await b.comment(nclient, card["id"], alice, "Ready to ship, @" + bob.username + "?")
    assert await b.kinds(nclient, alice) == []
    assert (await b.kinds(nclient, bob)).count("comment.mentioned") == 1
    assert "card.commented" not in await b.kinds(nclient, bob)
    mention = next(n for n in await b.notifications(nclient, bob) if n["kind"] == "comment.mentioned")
    assert mention["card_id"] == card["id"]
    assert "Ready to ship" in mention["data"]["excerpt"]
    assert (await b.kinds(nclient, carol)).count("card.commented") == 1
    assert (await b.kinds(nclient, dave)).count("card.commented") == 1

    # bob answers: carol and dave hear of it, bob does not; dave unwatches and hears nothing more
    await b.comment(nclient, card["id"], bob, "Yes")
    assert (await b.kinds(nclient, bob)).count("card.commented") == 0
    assert (await b.kinds(nclient, dave)).count("card.commented") == 2
    assert (await nclient.delete(f"/api/v1/cards/{card['id']}/watch", headers=dave.headers)).json()[
        "watching"
    ] is False
    await b.comment(nclient, card["id"], carol, "Shipped")
    assert (await b.kinds(nclient, dave)).count("card.commented") == 2
    # alice is an assignee: bob's and carol's comments reach her, her own did not
    assert await b.kinds(nclient, alice) == ["card.commented", "card.commented"]


async def test_removed_member_is_told_and_stops_watching(nclient):
    alice, bob = await make_account(nclient), await make_account(nclient)
    board_id = await b.board(nclient, alice)
    await b.add_member(nclient, board_id, alice, bob)
    card = await b.card(nclient, await b.a_list(nclient, board_id, alice), alice)
    await nclient.post(f"/api/v1/cards/{card['id']}/watch", headers=bob.headers)
    removed = await nclient.delete(f"/api/v1/boards/{board_id}/members/{bob.id}", headers=alice.headers)
    assert removed.status_code == 204, removed.text
    assert await b.kinds(nclient, bob) == ["member.added", "member.removed"]
    # no longer a member: the card is invisible, watching it is a 404
    assert (await nclient.post(f"/api/v1/cards/{card['id']}/watch", headers=bob.headers)).status_code == 404


async def test_a_refused_change_notifies_nobody(nclient):
    alice, bob, eve = [await make_account(nclient) for _ in range(3)]
    board_id = await b.board(nclient, alice)
    await b.add_member(nclient, board_id, alice, bob)
    list_id = await b.a_list(nclient, board_id, alice)
    # eve is no member: the whole card is refused, bob's assignment included
    refused = await nclient.post(
        f"/api/v1/lists/{list_id}/cards",
        json={"title": "x", "assignee_ids": [bob.id, eve.id]},
        headers=alice.headers,
    )
    assert refused.status_code == 422
    card = await b.card(nclient, list_id, alice)
    stale = await nclient.patch(
        f"/api/v1/cards/{card['id']}", json={"assignee_ids": [bob.id], "version": 99}, headers=alice.headers
    )
    assert stale.status_code == 409
    assert await b.kinds(nclient, bob) == ["member.added"]


async def test_due_reminders_once_within_the_window(nclient, jobs, mailbox):
    alice, bob = await make_account(nclient), await make_account(nclient)
    board_id = await b.board(nclient, alice)
    await b.add_member(nclient, board_id, alice, bob)
    list_id = await b.a_list(nclient, board_id, alice)
    soon = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=30)).isoformat()
    due = await b.card(nclient, list_id, alice, title="Soon", due_at=soon, assignee_ids=[bob.id, alice.id])
    await b.card(nclient, list_id, alice, title="Later", due_at=later, assignee_ids=[bob.id])
    archived = await b.card(nclient, list_id, alice, title="Gone", due_at=soon, assignee_ids=[bob.id])
    await nclient.patch(f"/api/v1/cards/{archived['id']}", json={"archived": True}, headers=alice.headers)

    await in_app(nclient, jobs.run_now, "send_reminders")
    await in_app(nclient, jobs.run_now, "send_reminders")
    reminders = [n for n in await b.notifications(nclient, bob) if n["kind"] == "card.due"]
    assert [n["card_id"] for n in reminders] == [due["id"]]
    # assignees are reminded even of cards they assigned themselves
    assert [n["card_id"] for n in await b.notifications(nclient, alice) if n["kind"] == "card.due"] == [
        due["id"]
    ]
    # three assignment mails and one reminder (both kinds mail by default)
    mails = await mailbox.wait_for(bob.email, count=4)
    assert sum("is due" in m.subject for m in mails) == 1


async def test_a_mention_added_by_editing_a_comment_notifies_once(nclient):
    alice, bob = await make_account(nclient), await make_account(nclient)
    board_id = await b.board(nclient, alice)
    await b.add_member(nclient, board_id, alice, bob)
    card = await b.card(nclient, await b.a_list(nclient, board_id, alice), alice)
    posted = await b.comment(nclient, card["id"], alice, "first draft")
    assert "comment.mentioned" not in await b.kinds(nclient, bob)
    for body in (f"cc @{bob.username}", f"cc @{bob.username} again"):
        edited = await nclient.patch(
            f"/api/v1/comments/{posted['id']}", json={"body": body}, headers=alice.headers
        )
        assert edited.status_code == 200, edited.text
    assert (await b.kinds(nclient, bob)).count("comment.mentioned") == 1
