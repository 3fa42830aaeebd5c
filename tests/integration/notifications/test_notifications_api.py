"""Notification REST: list with ?unread= and cursors, count, read one / all, preferences, unsubscribe."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from persistence.events import UserMessage
from tests.integration.notifications.helpers import notify
from tests.support.factories import make_account
from tests.support.sink import tee_sink


async def test_list_count_read_and_read_all(nclient, napp):
    alice, bob = await make_account(nclient), await make_account(nclient)
    for i in range(5):
        await notify(
            nclient,
            napp,
            user_ids=[bob.id, alice.id],
            kind="card.commented",
            actor_id=alice.id,
            data={"actor_name": alice.username, "card_title": f"card {i}", "board_name": "B"},
        )
    # alice acted: she gets nothing
    assert (await nclient.get("/api/v1/notifications/unread-count", headers=alice.headers)).json() == {
        "count": 0
    }
    assert (await nclient.get("/api/v1/notifications/unread-count", headers=bob.headers)).json() == {
        "count": 5
    }

    first = (await nclient.get("/api/v1/notifications?limit=2", headers=bob.headers)).json()
    assert [n["data"]["card_title"] for n in first["items"]] == ["card 4", "card 3"]
    assert first["next_cursor"]
    rest = (
        await nclient.get(f"/api/v1/notifications?limit=2&cursor={first['next_cursor']}", headers=bob.headers)
    ).json()
    assert [n["data"]["card_title"] for n in rest["items"]] == ["card 2", "card 1"]

    target = first["items"][0]
    read = await nclient.post(f"/api/v1/notifications/{target['id']}/read", headers=bob.headers)
    assert read.status_code == 200
    assert read.json()["read_at"]
    again = await nclient.post(f"/api/v1/notifications/{target['id']}/read", headers=bob.headers)
    assert again.json()["read_at"] == read.json()["read_at"]
    unread = (await nclient.get("/api/v1/notifications?unread=true", headers=bob.headers)).json()["items"]
    assert len(unread) == 4
    assert target["id"] not in {n["id"] for n in unread}
    done = (await nclient.get("/api/v1/notifications?unread=false", headers=bob.headers)).json()["items"]
    assert [n["id"] for n in done] == [target["id"]]

    # someone else's notification looks like none at all
    assert (
        await nclient.post(f"/api/v1/notifications/{target['id']}/read", headers=alice.headers)
    ).status_code == 404

    assert (await nclient.post("/api/v1/notifications/read-all", headers=bob.headers)).json() == {"count": 4}
    assert (await nclient.get("/api/v1/notifications/unread-count", headers=bob.headers)).json() == {
        "count": 0
    }


async def test_created_and_read_are_handed_to_the_user_topic(nclient, napp, monkeypatch):
    sink = tee_sink(napp, monkeypatch)
    alice, bob = await make_account(nclient), await make_account(nclient)
    await notify(nclient, napp, user_ids=[bob.id], kind="card.assigned", actor_id=alice.id, data={})
    mine = [c for c in sink.controls if isinstance(c, UserMessage) and str(c.user_id) == bob.id]
    assert [m.event for m in mine] == ["notification.created"]
    (item,) = (await nclient.get("/api/v1/notifications", headers=bob.headers)).json()["items"]
    await nclient.post(f"/api/v1/notifications/{item['id']}/read", headers=bob.headers)
    mine = [c for c in sink.controls if isinstance(c, UserMessage) and str(c.user_id) == bob.id]
    assert [m.event for m in mine] == ["notification.created", "notification.read"]


async def test_bad_paging_input_is_a_problem(nclient):
    bob = await make_account(nclient)
    assert (await nclient.get("/api/v1/notifications?limit=0", headers=bob.headers)).status_code in (400, 422)
    assert (await nclient.get("/api/v1/notifications?limit=201", headers=bob.headers)).status_code in (
        400,
        422,
    )
    bad = await nclient.get("/api/v1/notifications?cursor=nope", headers=bob.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await nclient.get("/api/v1/notifications")).status_code == 401


async def test_preferences_validate_and_off_means_nothing_stored(nclient, napp):
    alice, bob = await make_account(nclient), await make_account(nclient)
    prefs = (await nclient.get("/api/v1/notifications/preferences", headers=bob.headers)).json()[
        "preferences"
    ]
    assert prefs["comment.mentioned"] == "email"
    assert prefs["card.commented"] == "in_app"
    bad = await nclient.put(
        "/api/v1/notifications/preferences",
        json={"preferences": {"card.commented": "pigeon", "nope": "email"}},
        headers=bob.headers,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"preferences.card.commented", "preferences.nope"}
    ok = await nclient.put(
        "/api/v1/notifications/preferences",
        json={"preferences": {"card.commented": "off"}},
        headers=bob.headers,
    )
    assert ok.status_code == 200
    assert ok.json()["preferences"]["card.commented"] == "off"
    await notify(nclient, napp, user_ids=[bob.id], kind="card.commented", actor_id=alice.id, data={})
    assert (await nclient.get("/api/v1/notifications/unread-count", headers=bob.headers)).json() == {
        "count": 0
    }


async def test_email_now_with_html_text_and_one_click_unsubscribe(nclient, napp, mailbox):
    alice, bob = await make_account(nclient), await make_account(nclient)
    await notify(
        nclient,
        napp,
        user_ids=[bob.id],
        kind="comment.mentioned",
        actor_id=alice.id,
        data={
            "actor_name": "Alice <b>",
            "card_title": "Ship it",
            "board_name": "Launch",
            "excerpt": "hi @bob",
        },
    )
    [mail] = await mailbox.wait_for(bob.email)
    assert "Alice <b> mentioned you on “Ship it”" in mail.part("plain")
    html = mail.part("html")
    assert "Alice &lt;b&gt;" in html
    assert "<b>" not in html.replace("<body", "")
    link = mail.message["List-Unsubscribe"].strip("<>")
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = parse_qs(urlsplit(link).query)["token"][0]

    forged = await nclient.get("/api/v1/notifications/unsubscribe", params={"token": token[:-4] + "AAAA"})
    assert forged.status_code == 422
    page = await nclient.get("/api/v1/notifications/unsubscribe", params={"token": token})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    prefs = (await nclient.get("/api/v1/notifications/preferences", headers=bob.headers)).json()[
        "preferences"
    ]
    assert prefs["comment.mentioned"] == "in_app"
    # still in the app, no more mail
    await notify(nclient, napp, user_ids=[bob.id], kind="comment.mentioned", actor_id=alice.id, data={})
    assert (await nclient.get("/api/v1/notifications/unread-count", headers=bob.headers)).json() == {
        "count": 2
    }


async def test_hourly_digest_batches_unread_ones(nclient, napp, mailbox, jobs):
    from tests.integration.notifications.conftest import in_app

    alice, bob = await make_account(nclient), await make_account(nclient)
    await nclient.put(
        "/api/v1/notifications/preferences",
        json={"preferences": {"card.assigned": "digest", "card.commented": "digest"}},
        headers=bob.headers,
    )
    for title in ("one", "two", "three"):
        await notify(
            nclient,
            napp,
            user_ids=[bob.id],
            kind="card.assigned",
            actor_id=alice.id,
            data={"actor_name": "alice", "card_title": title, "board_name": "B"},
        )
    # one read in the app before the digest runs: not mailed again
    (latest, *_rest) = (await nclient.get("/api/v1/notifications", headers=bob.headers)).json()["items"]
    await nclient.post(f"/api/v1/notifications/{latest['id']}/read", headers=bob.headers)
    assert mailbox.to(bob.email) == []
    await in_app(nclient, jobs.run_now, "send_digests")
    [digest] = await mailbox.wait_for(bob.email)
    text = digest.part("plain")
    assert "2 new notifications" in text
    assert "“one”" in text
    assert "“two”" in text
    assert "“three”" not in text
    assert digest.message["List-Unsubscribe"]
    # a second run has nothing new to send
    await in_app(nclient, jobs.run_now, "send_digests")
    assert len(mailbox.to(bob.email)) == 1
