"""Live notifications on ``user:{id}`` over real sockets, across two server instances."""

from __future__ import annotations

import pytest

from tests.conftest import base_env
from tests.support.phx import Phx, account, api

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def cluster_env(pg_url, redis_url, tmp_path, run_id):
    env = base_env(tmp_path, run_id)
    env.update({"DATABASE_URL": pg_url, "REDIS_URL": redis_url})
    return env


async def test_created_and_read_reach_every_socket_of_the_user_on_every_instance(
    cluster_env, live_server_factory
):
    a = live_server_factory(cluster_env)
    b = live_server_factory(cluster_env)
    alice, bob = account(a), account(a)
    topic = f"user:{bob['id']}"
    sockets = [
        await Phx.connect(a.ws_url, bob["access_token"]),
        await Phx.connect(b.ws_url, bob["access_token"]),
    ]
    for sock in sockets:
        _, reply = await sock.join(topic)
        assert reply["status"] == "ok"

    with api(a, alice["access_token"]) as c:
        board = c.post("/boards", json={"name": "Live"}).json()
        assert c.post(f"/boards/{board['id']}/members", json={"user_id": bob["id"]}).status_code == 201
        list_id = c.post(f"/boards/{board['id']}/lists", json={"name": "Todo"}).json()["id"]
        card = c.post(f"/lists/{list_id}/cards", json={"title": "Ship", "assignee_ids": [bob["id"]]}).json()

    kinds = []
    for sock in sockets:
        pushed = [(await sock.event(topic, "notification.created"))[4] for _ in range(2)]
        kinds.append(sorted(p["kind"] for p in pushed))
        assignment = next(p for p in pushed if p["kind"] == "card.assigned")
        assert assignment["card_id"] == card["id"]
        assert assignment["actor_id"] == alice["id"]
    assert kinds == [["card.assigned", "member.added"]] * 2

    with api(b, bob["access_token"]) as c:
        read = c.post(f"/notifications/{assignment['id']}/read")
        assert read.status_code == 200, read.text
    for sock in sockets:
        payload = (await sock.event(topic, "notification.read"))[4]
        assert payload["ids"] == [assignment["id"]]
        assert payload["unread_count"] == 1
    with api(a, bob["access_token"]) as c:
        assert c.post("/notifications/read-all").json() == {"count": 1}
    for sock in sockets:
        payload = (await sock.event(topic, "notification.read"))[4]
        assert payload["all"] is True
        assert payload["unread_count"] == 0
        await sock.close()
