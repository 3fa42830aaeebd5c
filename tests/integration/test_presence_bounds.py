"""Presence is bounded like ephemeral (SPEC §6): a meta's size, a user's entries on a topic, and a
socket's updates per second; over a live server on both backends."""

from __future__ import annotations

import pytest

from tests.support.phx import Phx, account, api
from tests.support.rest import add_member, create_board

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def server(backend_env, tmp_path_factory):
    from tests.support.live import LiveServer

    env = {**backend_env, "PUSHES_PER_SECOND": "1000", "PRESENCE_METAS_PER_USER": "2"}
    s = LiveServer(env, log_path=tmp_path_factory.mktemp("log") / "server.log").start()
    yield s
    s.stop()


async def _joined(server, token: str, topic: str) -> tuple[Phx, str, dict]:
    phx = await Phx.connect(server.ws_url, token)
    join_ref, reply = await phx.join(topic)
    assert reply["status"] == "ok"
    state = await phx.event(topic, "presence_state")
    return phx, join_ref, state[4]


async def test_meta_size_and_update_rate_are_bounded(server):
    user = account(server)
    topic = f"board:{create_board(server, user['access_token'])['id']}"
    phx, join_ref, _ = await _joined(server, user["access_token"], topic)
    big = await phx.push(topic, "presence", {"status": "x" * 2000}, join_ref)
    assert (await phx.reply(big))["response"] == {"reason": "too_large"}
    answers = []
    for i in range(6):  # sent within well under two seconds: at most 2 + 2 pass
        ref = await phx.push(topic, "presence", {"status": f"s{i}"}, join_ref)
        answers.append(await phx.reply(ref))
    assert answers[0]["status"] == "ok"
    refused = [a for a in answers if a["status"] == "error"]
    assert len(refused) >= 2
    assert all(a["response"] == {"reason": "rate_limited"} for a in refused)
    await phx.close()


async def test_a_user_has_at_most_the_configured_entries_on_a_topic(server):
    user = account(server)
    topic = f"board:{create_board(server, user['access_token'])['id']}"
    tabs = [await _joined(server, user["access_token"], topic) for _ in range(3)]
    third, join_ref, state = tabs[2]
    assert len(state[user["id"]]["metas"]) == 2  # the first two tabs; the third is not tracked
    ref = await third.push(topic, "presence", {"status": "here"}, join_ref)
    assert (await third.reply(ref))["response"] == {"reason": "presence_limit"}
    for phx, _, _ in tabs:
        await phx.close()


async def test_observers_and_read_only_tokens_may_not_send_ephemeral(server):
    owner = account(server)
    watcher = account(server)
    board = create_board(server, owner["access_token"])
    add_member(server, owner["access_token"], board["id"], watcher["id"], role="observer")
    with api(server, owner["access_token"]) as c:
        made = c.post("/auth/tokens", json={"name": "bot", "scopes": ["read"]})
        assert made.status_code == 201, made.text
        read_only = made.json()["token"]
    topic = f"board:{board['id']}"
    editor, editor_ref, _ = await _joined(server, owner["access_token"], topic)
    for token in (watcher["access_token"], read_only):
        phx, join_ref, _ = await _joined(server, token, topic)
        ref = await phx.push(topic, "ephemeral", {"kind": "typing", "data": {}}, join_ref)
        assert (await phx.reply(ref))["response"] == {"reason": "unauthorized"}
        await phx.close()
    # a member's ephemeral reaches the others (here: a read-only token's socket, which may watch)
    watching, _, _ = await _joined(server, read_only, topic)
    await editor.push(topic, "ephemeral", {"kind": "typing", "data": {"card": 1}}, editor_ref)
    pushed = await watching.event(topic, "ephemeral")
    assert pushed[4]["kind"] == "typing"
    await editor.close()
    await watching.close()
