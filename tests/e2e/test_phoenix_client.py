"""The unmodified phoenix npm client (Socket, Channel, Presence) against a live server."""

from __future__ import annotations

import pytest

from tests.e2e.nodeclient import NodeClient, require_node
from tests.support.phx import Phx, account
from tests.support.rest import add_member, create_board, create_card, create_list, current_seq, event_seqs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def server(backend_env, tmp_path_factory):
    from tests.support.live import LiveServer

    require_node()
    s = LiveServer(backend_env, log_path=tmp_path_factory.mktemp("log") / "server.log").start()
    yield s
    s.stop()


def ids(message):
    return sorted(p["id"] for p in message["list"])


@pytest.mark.parametrize("auth", ["param", "subprotocol"])
async def test_events_presence_and_rejoin_with_exactly_the_missed_events(server, auth):
    alice, bob = account(server), account(server)
    token = alice["access_token"]
    board = create_board(server, token)
    add_member(server, token, board["id"], bob["id"])
    start = current_seq(server, token, board["id"])
    client = await NodeClient.start(server, token, f"board:{board['id']}", last_seq=start, auth=auth)
    try:
        joined = await client.expect(lambda m: m["type"] == "joined")
        assert joined["reply"]["resync"] is False
        assert joined["reply"]["seq"] == start

        # events made over REST reach the client
        lst = create_list(server, token, board["id"])
        create_card(server, token, lst["id"], "one")
        await client.expect(lambda m: m["type"] == "event" and m["event"] == "card.created")

        # Presence.list fills with bob and empties again
        await client.expect(lambda m: m["type"] == "presence" and ids(m) == [alice["id"]])
        phx = await Phx.connect(server.ws_url, bob["access_token"])
        _, reply = await phx.join(f"board:{board['id']}")
        assert reply["status"] == "ok"
        await client.expect(
            lambda m: (
                m["type"] == "presence"
                and sorted(p["id"] for p in m["list"]) == sorted([alice["id"], bob["id"]])
            )
        )
        closing = client.mark()
        await phx.close()
        await client.expect(lambda m: m["type"] == "presence" and ids(m) == [alice["id"]], after=closing)

        # the connection drops; changes happen meanwhile; the client rejoins by itself with last_seq
        dropping = client.mark()
        await client.command("drop")
        await client.expect(lambda m: m["type"] == "close", after=dropping)
        for title in ("two", "three", "four"):
            create_card(server, token, lst["id"], title)
        await client.expect(lambda m: m["type"] == "open", timeout=20, after=dropping)
        final = event_seqs(server, token, board["id"])[-1]
        await client.expect(lambda m: m["type"] == "event" and m["seq"] == final, timeout=20)
        create_card(server, token, lst["id"], "five")
        await client.expect(lambda m: m["type"] == "event" and m["seq"] == final + 1)
        seqs = client.seqs()
        assert seqs == list(range(start + 1, final + 2)), seqs
        assert len([m for m in client.lines if m["type"] == "joined"]) == 2
    finally:
        await client.stop()
