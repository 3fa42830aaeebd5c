"""Webhooks over HTTP against a real local receiver: signatures, retries, the delivery log,
automatic disabling, event filters, and the private-address rule."""

from __future__ import annotations

import asyncio
import json

from litestar.testing import AsyncTestClient

from server.webhooks.security import verify
from tests.integration.notifications import boards_http as b
from tests.support.factories import make_account
from tests.support.receiver import Receiver

SECRET = "a-very-secret-webhook-key"


async def _hook(client, board_id, who, url, events=None):
    body = {"url": url, "secret": SECRET}
    if events is not None:
        body["events"] = events
    return await client.post(f"/api/v1/boards/{board_id}/webhooks", json=body, headers=who.headers)


async def _deliveries(client, hook_id, who):
    response = await client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_signed_delivery_retried_until_the_receiver_accepts(nclient):
    alice, bob = await make_account(nclient), await make_account(nclient)
    board_id = await b.board(nclient, alice)
    await b.add_member(nclient, board_id, alice, bob)  # before the webhook: not delivered
    with Receiver(fail_first=2) as receiver:
        created = await _hook(nclient, board_id, alice, receiver.url)
        assert created.status_code == 201, created.text
        hook = created.json()
        assert "secret" not in hook
        assert hook["events"] == ["*"]
        list_id = await b.a_list(nclient, board_id, alice)
        await receiver.wait_until(lambda r: len(r.successes()) == 1)
        hits = receiver.hits
        assert [h.answered for h in hits] == [500, 500, 204]
        assert len({h.headers["x-corkboard-delivery"] for h in hits}) == 1
        final = hits[-1]
        assert verify(SECRET, final.headers["x-corkboard-signature"], final.body)
        assert not verify("wrong-secret-wrong-secret", final.headers["x-corkboard-signature"], final.body)
        envelope = json.loads(final.body)
        assert envelope["type"] == final.headers["x-corkboard-event"] == "list.created"
        assert envelope["board_id"] == board_id
        assert envelope["data"]["id"] == list_id
        assert envelope["seq"] == hook["last_seq"] + 1

        # The receiver counts its answer before the worker has read it and recorded the outcome.
        for _ in range(100):
            (delivery,) = await _deliveries(nclient, hook["id"], alice)
            if delivery["status"] != "pending":
                break
            await asyncio.sleep(0.05)
        assert delivery["status"] == "succeeded"
        assert delivery["attempts"] == 3
        assert delivery["response_status"] == 204
        assert delivery["event_seq"] == envelope["seq"]
        listed = (await nclient.get(f"/api/v1/boards/{board_id}/webhooks", headers=alice.headers)).json()[
            "items"
        ]
        assert listed[0]["consecutive_failures"] == 0
        assert listed[0]["active"] is True

        # members may not see or manage webhooks; outsiders do not learn the board exists
        outsider = await make_account(nclient)
        assert (
            await nclient.get(f"/api/v1/boards/{board_id}/webhooks", headers=bob.headers)
        ).status_code == 403
        assert (
            await nclient.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bob.headers)
        ).status_code == 403
        assert (await _hook(nclient, board_id, outsider, receiver.url)).status_code == 404
        assert (
            await nclient.delete(f"/api/v1/webhooks/{hook['id']}", headers=outsider.headers)
        ).status_code == 404
        assert (
            await nclient.delete(f"/api/v1/webhooks/{hook['id']}", headers=alice.headers)
        ).status_code == 204
        await b.a_list(nclient, board_id, alice)
        assert (await nclient.get(f"/api/v1/boards/{board_id}/webhooks", headers=alice.headers)).json()[
            "items"
        ] == []


async def test_event_filter_and_disabling_after_repeated_failures(nclient):
    alice = await make_account(nclient)
    board_id = await b.board(nclient, alice)
    list_id = await b.a_list(nclient, board_id, alice)
    with Receiver(fail_first=-1) as receiver:  # always 500
        hook = (await _hook(nclient, board_id, alice, receiver.url, events=["card.*"])).json()
        await b.a_list(nclient, board_id, alice)  # list.created: not subscribed
        card = await b.card(nclient, list_id, alice)  # card.created
        await b.comment(nclient, card["id"], alice, "not subscribed either")
        # WEBHOOK_MAX_FAILURES=3 in the test settings
        await receiver.wait_until(lambda r: len(r.hits) >= 3)
        listed = None
        for _ in range(100):
            listed = (await nclient.get(f"/api/v1/boards/{board_id}/webhooks", headers=alice.headers)).json()[
                "items"
            ][0]
            if not listed["active"]:
                break
            await asyncio.sleep(0.1)
        assert listed["active"] is False
        assert "3 failed deliveries in a row" in listed["disabled_reason"]
        assert {json.loads(h.body)["type"] for h in receiver.hits} == {"card.created"}
        (delivery,) = await _deliveries(nclient, hook["id"], alice)
        assert delivery["status"] == "failed"
        assert delivery["attempts"] == 3
        assert delivery["response_status"] == 500
        assert len(receiver.hits) == 3
        await b.card(nclient, list_id, alice)  # disabled: nothing more is sent
        await asyncio.sleep(0.5)
        assert len(receiver.hits) == 3
        # re-enabled: deliveries resume from the current event on
        receiver.fail_first = 0
        receiver.hits.clear()
        enabled = await nclient.patch(
            f"/api/v1/webhooks/{hook['id']}", json={"active": True}, headers=alice.headers
        )
        assert enabled.json()["active"] is True
        await b.card(nclient, list_id, alice, title="after")
        await receiver.wait_until(lambda r: len(r.successes()) == 1)
        assert json.loads(receiver.hits[0].body)["data"]["title"] == "after"


async def test_bad_webhook_input_is_refused(nclient):
    alice = await make_account(nclient)
    board_id = await b.board(nclient, alice)
    bad_events = await _hook(nclient, board_id, alice, "http://127.0.0.1:9/x", events=["card.exploded"])
    assert bad_events.status_code == 422
    bad_url = await _hook(nclient, board_id, alice, "ftp://example.com/x")
    assert bad_url.status_code == 422
    assert bad_url.json()["errors"][0]["field"] == "url"
    short = await nclient.post(
        f"/api/v1/boards/{board_id}/webhooks",
        json={"url": "http://127.0.0.1:9/", "secret": "x"},
        headers=alice.headers,
    )
    assert short.status_code in (400, 422)


async def test_private_addresses_refused_without_the_setting(notify_env, tmp_path):
    """A server without WEBHOOK_ALLOW_PRIVATE refuses loopback, private and metadata URLs, and
    re-checks at delivery time (a URL that points inside by the time it is delivered fails)."""
    from server.app import create_app
    from server.settings import load_settings

    env = {**notify_env, "WEBHOOK_ALLOW_PRIVATE": "false", "DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    app = create_app(load_settings(env))
    async with AsyncTestClient(app=app) as client:
        alice = await make_account(client)
        board_id = await b.board(client, alice)
        for url in (
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://169.254.169.254/latest",
            "http://10.0.0.5/",
            "http://[::1]/",
            "http://192.168.1.1/",
        ):
            refused = await _hook(client, board_id, alice, url)
            assert refused.status_code == 422, url
            assert refused.json()["errors"][0]["field"] == "url"
        with Receiver() as receiver:
            # created while the name pointed outside (simulated: a public literal), then repointed inside
            hook = (await _hook(client, board_id, alice, "http://93.184.215.14:9/x")).json()
            from sqlalchemy import update
            from sqlalchemy.ext.asyncio import AsyncSession

            from persistence.models import Webhook
            from tests.integration.notifications.conftest import in_app

            async def repoint() -> None:
                async with AsyncSession(app.state.db_engine) as session, session.begin():
                    await session.execute(
                        update(Webhook).where(Webhook.id == hook["id"]).values(url=receiver.url)
                    )

            import uuid

            hook["id"] = uuid.UUID(hook["id"])
            await in_app(client, repoint)
            await b.a_list(client, board_id, alice)
            for _ in range(200):
                items = await _deliveries(client, hook["id"], alice)
                if items and items[0]["error"]:
                    break
                await asyncio.sleep(0.1)
            assert items[0]["error"].startswith("refused:")
            assert receiver.hits == []
