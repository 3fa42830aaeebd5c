"""Board topics on a live server: events from REST, replay, snapshot, access changes, slow readers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.phx import Phx, StalledReader, account, api
from tests.support.rest import (
    add_member,
    create_board,
    create_card,
    create_list,
    current_seq,
    remove_member,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def server(backend_env, tmp_path_factory):
    from tests.support.live import LiveServer

    env = {**backend_env, "PUSHES_PER_SECOND": "100000"}
    s = LiveServer(env, log_path=tmp_path_factory.mktemp("log") / "server.log").start()
    yield s
    s.stop()


async def test_rest_change_reaches_board_list_and_card_topics(server):
    alice = account(server)
    token = alice["access_token"]
    board = create_board(server, token)
    lst = create_list(server, token, board["id"])
    phx = await Phx.connect(server.ws_url, token)
    _, reply = await phx.join(f"board:{board['id']}", {"snapshot": True})
    assert reply["status"] == "ok"
    assert reply["response"]["board"]["id"] == board["id"]
    assert reply["response"]["board"]["seq"] == reply["response"]["seq"]
    _, reply = await phx.join(f"list:{lst['id']}")
    assert reply["status"] == "ok"
    card = create_card(server, token, lst["id"])
    on_board = await phx.event(f"board:{board['id']}", "card.created")
    on_list = await phx.event(f"list:{lst['id']}", "card.created")
    assert on_board[:2] == [None, None]
    assert on_board[4]["data"]["id"] == card["id"] == on_list[4]["data"]["id"]
    _, reply = await phx.join(f"card:{card['id']}")
    assert reply["status"] == "ok"
    with api(server, token) as c:
        assert c.patch(f"/cards/{card['id']}", json={"title": "renamed"}).status_code == 200
    event = await phx.event(f"card:{card['id']}", "card.updated")
    assert event[4]["data"]["title"] == "renamed"
    await phx.close()


async def test_join_with_last_seq_replays_in_order(server):
    alice = account(server)
    token = alice["access_token"]
    board = create_board(server, token)
    start = current_seq(server, token, board["id"])
    lst = create_list(server, token, board["id"])
    for i in range(3):
        create_card(server, token, lst["id"], f"c{i}")
    phx = await Phx.connect(server.ws_url, token)
    _, reply = await phx.join(f"board:{board['id']}", {"last_seq": start})
    assert reply["response"] == {"seq": start + 4, "resync": False}
    seqs = [(await phx.expect(lambda f: f[3] != "presence_state"))[4]["seq"] for _ in range(4)]
    assert seqs == [start + 1, start + 2, start + 3, start + 4]
    await phx.close()


async def test_non_member_is_refused_and_removed_member_gets_phx_close(server):
    alice, bob = account(server), account(server)
    board = create_board(server, alice["access_token"])
    phx = await Phx.connect(server.ws_url, bob["access_token"])
    _, reply = await phx.join(f"board:{board['id']}")
    assert reply["response"] == {"reason": "unauthorized"}
    add_member(server, alice["access_token"], board["id"], bob["id"])
    join_ref, reply = await phx.join(f"board:{board['id']}")
    assert reply["status"] == "ok"
    remove_member(server, alice["access_token"], board["id"], bob["id"])
    closed = await phx.event(f"board:{board['id']}", "phx_close")
    assert closed[0] == join_ref
    await phx.close()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _slow_consumers(server) -> float:
    text = httpx.get(server.url + "/metrics").text
    for line in text.splitlines():
        if line.startswith("corkboard_slow_consumers_dropped_total "):
            return float(line.split()[1])
    return 0.0


async def test_a_reader_that_stops_reading_is_closed_with_1013_and_memory_stays_flat(server):
    alice = account(server)
    token = alice["access_token"]
    board = create_board(server, token)
    topic = f"board:{board['id']}"
    slow = StalledReader(server, token)
    slow.send(["1", "1", topic, "phx_join", {}])
    while not any(f[3] == "phx_reply" for f in slow.frames):
        slow.read_some()
    assert slow.frames[0][4]["status"] == "ok"
    writer = await Phx.connect(server.ws_url, token)
    join_ref, _ = await writer.join(topic)
    before = _slow_consumers(server)
    rss_before = _rss_kib(server.proc.pid)
    blob = "x" * 8_000
    for _ in range(12_000):  # 96 MB towards a socket that reads nothing
        await writer.push(topic, "ephemeral", {"kind": "blob", "data": blob}, join_ref=join_ref)
        await asyncio.sleep(0)
    deadline = asyncio.get_running_loop().time() + 30
    while _slow_consumers(server) <= before:
        assert asyncio.get_running_loop().time() < deadline, "the slow reader was never dropped"
        await asyncio.sleep(0.2)
    growth_mib = (_rss_kib(server.proc.pid) - rss_before) / 1024
    # Unbounded buffering would hold most of the 96 MB; allocator noise and warm-up stay well below.
    assert growth_mib < 64, f"server RSS grew {growth_mib:.1f} MiB"
    assert slow.read_until_closed() == 1013
    # the writer is unaffected
    ref = await writer.push("phoenix", "heartbeat", {})
    assert (await writer.reply(ref))["status"] == "ok"
    await writer.close()
    print(f"\nslow reader: server RSS grew {growth_mib:.1f} MiB while 96 MB were pushed at it")


async def test_ephemeral_is_relayed_to_the_other_sockets(server):
    alice = account(server)
    token = alice["access_token"]
    board = create_board(server, token)
    topic = f"board:{board['id']}"
    a, b = await Phx.connect(server.ws_url, token), await Phx.connect(server.ws_url, token)
    join_ref, _ = await a.join(topic)
    await b.join(topic)
    await a.push(topic, "ephemeral", {"kind": "typing", "data": {"card": 1}}, join_ref=join_ref)
    frame = await b.event(topic, "ephemeral")
    assert frame[4] == {"user_id": alice["id"], "kind": "typing", "data": {"card": 1}}
    await a.close()
    await b.close()


async def test_membership_pushes_on_the_user_topic_and_board_deletion_closes_its_topics(server):
    alice, bob = account(server), account(server)
    board = create_board(server, alice["access_token"])
    bob_phx = await Phx.connect(server.ws_url, bob["access_token"])
    _, reply = await bob_phx.join(f"user:{bob['id']}")
    assert reply["status"] == "ok"
    add_member(server, alice["access_token"], board["id"], bob["id"])
    added = await bob_phx.event(f"user:{bob['id']}", "member.added")
    assert added[:2] == [None, None]
    alice_phx = await Phx.connect(server.ws_url, alice["access_token"])
    join_ref, _ = await alice_phx.join(f"board:{board['id']}")
    with api(server, alice["access_token"]) as c:
        assert c.delete(f"/boards/{board['id']}").status_code == 204
    closed = await alice_phx.event(f"board:{board['id']}", "phx_close")
    assert closed[0] == join_ref
    # and the topic cannot be joined again
    _, reply = await alice_phx.join(f"board:{board['id']}")
    assert reply["response"] == {"reason": "unauthorized"}
    await alice_phx.close()
    await bob_phx.close()
