"""Presence in the Phoenix format, coalesced; and the message count for a crowd joining at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from channels.hub import Hub
from tests.unit.channels.fakes import Client, FakeAccess, FakeAuth, FakeLog, settings

pytestmark = pytest.mark.timeout(60)


async def make_hub(**overrides):
    access = FakeAccess()
    hub = Hub(settings(**overrides), authenticator=FakeAuth(), access=access, eventlog=FakeLog())
    await hub.start()
    return hub, access


def frames(client, name):
    return [f[4] for f in client.sent if f[3] == name]


async def test_three_tabs_are_one_key_with_three_metas_and_leaves_diff():
    hub, access = await make_hub(presence_coalesce_ms=10)
    board, user = uuid.uuid4(), uuid.uuid4()
    access.members[board] = {user}
    watcher_user = uuid.uuid4()
    access.members[board].add(watcher_user)
    watcher = Client(hub, user=watcher_user)
    await watcher.join(f"board:{board}")
    tabs = [Client(hub, user=user) for _ in range(3)]
    for tab in tabs:
        await tab.join(f"board:{board}")
    await asyncio.sleep(0.05)
    state = hub.presence.state_payload(f"board:{board}")
    assert len(state[str(user)]["metas"]) == 3
    assert {"phx_ref", "online_at"} <= set(state[str(user)]["metas"][0])
    last_state = frames(tabs[2], "presence_state")[0]
    assert len(last_state[str(user)]["metas"]) == 3
    joined = [
        m for d in frames(watcher, "presence_diff") for m in d["joins"].get(str(user), {"metas": []})["metas"]
    ]
    assert len(joined) == 3
    hub.detach(tabs[0].socket)
    await asyncio.sleep(0.05)
    leaves = frames(watcher, "presence_diff")[-1]["leaves"]
    assert len(leaves[str(user)]["metas"]) == 1
    # the client may update its own meta: old ref leaves, new one joins
    await tabs[1].push(f"board:{board}", "presence", {"card": "c1"}, join_ref="1")
    await asyncio.sleep(0.05)
    diff = frames(watcher, "presence_diff")[-1]
    assert diff["joins"][str(user)]["metas"][0]["card"] == "c1"
    assert len(diff["leaves"][str(user)]["metas"]) == 1
    await hub.stop()


async def test_a_crowd_joining_in_one_second_costs_far_fewer_than_n_squared_messages():
    n = 500
    hub, access = await make_hub(presence_coalesce_ms=50, max_topics_per_socket=5)
    board = uuid.uuid4()
    clients = [Client(hub) for _ in range(n)]
    access.members[board] = {c.user for c in clients}
    for i, client in enumerate(clients):
        await client.join(f"board:{board}")
        if i % 25 == 24:
            await asyncio.sleep(0.05)  # 500 joins spread over about one second
    await asyncio.sleep(0.2)
    states = sum(len(frames(c, "presence_state")) for c in clients)
    diffs = sum(len(frames(c, "presence_diff")) for c in clients)
    print(
        f"\npresence: {n} sockets joining in ~1 s: {states} presence_state + {diffs} presence_diff "
        f"= {states + diffs} frames (naive: {n * n})"
    )
    assert states == n
    assert diffs < n * n / 10
    # every socket ends with the full picture: state + diffs
    final = hub.presence.state_payload(f"board:{board}")
    assert len(final) == n
    await hub.stop()
