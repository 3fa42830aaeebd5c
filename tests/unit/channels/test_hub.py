"""The hub with in-memory auth, access and event log: joins, replay, routing, access changes."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from channels.hub import Hub
from persistence.events import AccessRevoked, BoardDeleted, SessionsRevoked, UserMessage
from tests.unit.channels.fakes import Client, FakeAccess, FakeAuth, FakeLog, settings

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def world():
    log, access = FakeLog(), FakeAccess()
    hub = Hub(
        settings(replay_window=5, presence_coalesce_ms=10),
        authenticator=FakeAuth(),
        access=access,
        eventlog=log,
    )
    await hub.start()
    board = uuid.uuid4()
    yield hub, log, access, board
    await hub.stop()


def member(access, board, client):
    access.members.setdefault(board, set()).add(client.user)
    return client


async def settle():
    for _ in range(5):
        await asyncio.sleep(0.02)


async def test_replay_then_live_without_gap_or_duplicate(world):
    hub, log, access, board = world
    for i in range(3):
        log.commit(hub, board, "card.created", {"id": str(uuid.uuid4()), "n": i})
    client = member(access, board, Client(hub))
    log.read_delay = 0.05  # live events arrive while the join reads the log

    async def commit_during_join():
        await asyncio.sleep(0.01)
        for i in range(3):
            log.commit(hub, board, "card.updated", {"id": str(uuid.uuid4()), "n": i})
            await asyncio.sleep(0.01)

    results = await asyncio.gather(client.join(f"board:{board}", {"last_seq": 1}), commit_during_join())
    reply = results[0]
    assert reply["status"] == "ok"
    assert reply["response"]["resync"] is False
    log.commit(hub, board, "card.deleted", {"id": "x"})
    await settle()
    assert client.seqs(f"board:{board}") == [2, 3, 4, 5, 6, 7]
    kinds = [f[3] for f in client.sent]
    assert kinds.index("phx_reply") < kinds.index("card.created")


async def test_an_event_a_join_read_from_the_log_is_not_sent_again_when_the_broker_brings_it(world):
    hub, log, access, board = world
    topic = f"board:{board}"
    first = member(access, board, Client(hub))
    await first.join(topic)  # the board's feed is at seq 0
    # Committed on another instance: in the log, still on its way here through the broker.
    remote = log.append(board, "card.updated", {"id": "c"})
    second = member(access, board, Client(hub))
    reply = await second.join(topic)
    assert reply["response"]["seq"] == 1  # the join's reply already covers it
    hub.feeds[board].offer([remote])  # the broker's copy arrives
    await settle()
    assert first.seqs(topic) == [1]
    assert second.seqs(topic) == []


async def test_beyond_the_replay_window_says_resync(world):
    hub, log, access, board = world
    for _ in range(8):
        log.commit(hub, board, "card.created", {"id": "c"})
    client = member(access, board, Client(hub))
    reply = await client.join(f"board:{board}", {"last_seq": 1})
    assert reply["response"] == {"seq": 8, "resync": True}
    assert client.seqs(f"board:{board}") == []


async def test_snapshot_is_taken_at_the_reply_seq(world):
    hub, log, access, board = world
    log.commit(hub, board, "card.created", {"id": "c"})
    client = member(access, board, Client(hub))
    reply = await client.join(f"board:{board}", {"snapshot": True})
    assert reply["response"]["seq"] == 1
    assert reply["response"]["board"] == {"id": str(board), "seen_seq": 1}


async def test_non_members_and_bad_payloads_are_refused(world):
    hub, _log, _access, board = world
    client = Client(hub)
    assert (await client.join(f"board:{board}"))["response"] == {"reason": "unauthorized"}
    assert (await client.join(f"board:{board}", {"last_seq": "x"}))["response"] == {"reason": "bad_request"}


async def test_list_and_card_topics_get_the_events_that_touch_them(world):
    hub, log, access, board = world
    list_a, list_b, card = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    access.lists.update({list_a: board, list_b: board})
    access.cards[card] = board
    client = member(access, board, Client(hub))
    for topic in (f"list:{list_a}", f"list:{list_b}", f"card:{card}"):
        assert (await client.join(topic))["status"] == "ok"
    log.commit(
        hub, board, "card.moved", {"id": str(card), "list_id": str(list_b), "previous_list_id": str(list_a)}
    )
    log.commit(hub, board, "comment.created", {"id": "m", "card_id": str(card)})
    log.commit(hub, board, "list.updated", {"id": str(list_a)})
    log.commit(hub, board, "card.created", {"id": "other", "list_id": str(uuid.uuid4())})
    await settle()
    assert client.seqs(f"list:{list_a}") == [1, 3]
    assert client.seqs(f"list:{list_b}") == [1]
    assert client.seqs(f"card:{card}") == [1, 2]


async def test_access_revoked_closes_only_that_users_channels(world):
    hub, _log, access, board = world
    alice, bob = member(access, board, Client(hub)), member(access, board, Client(hub))
    await alice.join(f"board:{board}")
    await bob.join(f"board:{board}")
    hub.sink.publish_control(AccessRevoked(board_id=board, user_id=bob.user))
    await settle()
    assert [f for f in bob.sent if f[3] == "phx_close"] == [["1", "1", f"board:{board}", "phx_close", {}]]
    assert not [f for f in alice.sent if f[3] == "phx_close"]
    hub.sink.publish_control(BoardDeleted(board_id=board))
    await settle()
    assert [f[3] for f in alice.sent].count("phx_close") == 1
    assert board not in hub.board_topics


async def test_sessions_revoked_closes_with_4001(world):
    hub, _log, _access, _board = world
    credential = uuid.uuid4()
    one, two, other = Client(hub, credential=credential), Client(hub, credential=credential), Client(hub)
    hub.sink.publish_control(SessionsRevoked(session_ids=[credential]))
    await settle()
    assert (one.closed, two.closed, other.closed) == (4001, 4001, None)


async def test_ephemeral_reaches_the_others_only(world):
    hub, _log, access, board = world
    a, b = member(access, board, Client(hub)), member(access, board, Client(hub))
    await a.join(f"board:{board}")
    await b.join(f"board:{board}")
    await a.push(f"board:{board}", "ephemeral", {"kind": "typing", "data": {"card": 1}}, join_ref="1")
    assert [f[4] for f in b.sent if f[3] == "ephemeral"] == [
        {"user_id": str(a.user), "kind": "typing", "data": {"card": 1}}
    ]
    assert not [f for f in a.sent if f[3] == "ephemeral"]


async def test_after_a_broker_outage_revocations_missed_are_found_in_the_database(world):
    hub, _log, access, board = world
    stays, goes, revoked = (member(access, board, Client(hub)) for _ in range(3))
    for client in (stays, goes, revoked):
        await client.join(f"board:{board}")
    access.members[board].discard(goes.user)
    hub.authenticator.dead.add(revoked.socket.identity.credential_id)
    await hub._on_reconnect()
    await settle()
    assert revoked.closed == 4001
    assert [f[3] for f in goes.sent].count("phx_close") == 1
    assert stays.closed is None
    assert "phx_close" not in [f[3] for f in stays.sent]


async def test_user_messages_reach_that_users_topic_only(world):
    hub, _log, _access, _board = world
    alice, bob = Client(hub), Client(hub)
    assert (await alice.join(f"user:{alice.user}"))["status"] == "ok"
    assert (await bob.join(f"user:{alice.user}"))["response"] == {"reason": "unauthorized"}
    hub.sink.publish_control(
        UserMessage(user_id=alice.user, event="notification.created", payload=msgspec.Raw(b'{"id":"n1"}'))
    )
    await settle()
    assert [f for f in alice.sent if f[3] == "notification.created"] == [
        [None, None, f"user:{alice.user}", "notification.created", {"id": "n1"}]
    ]
    assert not [f for f in bob.sent if f[3] == "notification.created"]


async def test_a_list_join_replays_only_the_events_that_touch_the_list(world):
    hub, log, access, board = world
    mine, other = uuid.uuid4(), uuid.uuid4()
    access.lists.update({mine: board, other: board})
    log.commit(hub, board, "card.created", {"id": "a", "list_id": str(mine)})
    log.commit(hub, board, "card.created", {"id": "b", "list_id": str(other)})
    log.commit(hub, board, "card.moved", {"id": "b", "list_id": str(other), "previous_list_id": str(mine)})
    client = member(access, board, Client(hub))
    reply = await client.join(f"list:{mine}", {"last_seq": 0})
    assert reply["response"] == {"seq": 3, "resync": False}
    assert client.seqs(f"list:{mine}") == [1, 3]
    assert "presence_state" not in [f[3] for f in client.sent]  # presence is on board and card topics


async def test_a_commit_on_the_loop_is_delivered_and_published_in_that_same_turn(world):
    hub, log, access, board = world
    client = member(access, board, Client(hub))
    assert (await client.join(f"board:{board}"))["status"] == "ok"
    published = []
    publish = hub.broker.publish
    hub.broker.publish = lambda channel, data: (published.append(channel), publish(channel, data))  # type: ignore[method-assign]
    log.commit(hub, board, "card.created", {"id": "a"})
    # No await in between: the broker has the event and the socket has its frame already.
    assert published == [hub.board_channel(board)]
    assert client.seqs(f"board:{board}") == [1]


async def test_a_commit_from_another_thread_is_handed_to_the_loop(world):
    hub, log, access, board = world
    client = member(access, board, Client(hub))
    assert (await client.join(f"board:{board}"))["status"] == "ok"
    await asyncio.to_thread(log.commit, hub, board, "card.created", {"id": "a"})
    await settle()
    assert client.seqs(f"board:{board}") == [1]
