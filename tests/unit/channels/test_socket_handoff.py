"""A socket handed off by the protocol (WS_IMPL=fastpath): messages come in synchronously through
``Socket.frame_received``; a join runs in a task and the messages after it wait, in order."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from channels.connection import Connection
from channels.hub import Hub
from channels.socket import Socket
from channels.topics import Identity
from tests.unit.channels.fakes import FakeAccess, FakeAuth, FakeLog, FakeWriteSide, settings

pytestmark = pytest.mark.timeout(30)


class FakeRaw(FakeWriteSide):
    """What Socket and Connection use of channels.fastpath.FastPathProtocol once handed off."""

    def __init__(self) -> None:
        super().__init__()
        self.receiver: Socket | None = None
        self.held = False
        self.holds = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def close_with(self, code: int) -> None:
        if self.close_sent:
            return
        super().close_with(code)
        assert self.receiver is not None
        self.receiver.connection_closed()  # as uvicorn's queue.put_nowait(disconnect) does

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def hold_reading(self) -> None:
        self.held = True
        self.holds += 1

    def release_reading(self) -> None:
        self.held = False

    def frames(self) -> list[Any]:
        out = []
        for data in self.transport.data:  # a write may hold several frames (Socket.send_many)
            while data:
                n, start = data[1] & 0x7F, 2
                if n == 126:
                    n, start = int.from_bytes(data[2:4], "big"), 4
                out.append(json.loads(data[start : start + n]))
                data = data[start + n :]
        return out


@pytest.fixture
async def world():
    log, access = FakeLog(), FakeAccess()
    hub = Hub(settings(presence_coalesce_ms=10), authenticator=FakeAuth(), access=access, eventlog=log)
    await hub.start()
    yield hub, log, access, uuid.uuid4()
    await hub.stop()


def handed_off(
    hub: Hub, access: FakeAccess | None = None, board: uuid.UUID | None = None
) -> tuple[Socket, FakeRaw]:
    raw = FakeRaw()
    user = uuid.uuid4()
    socket = Socket(
        Connection(None, hub.settings.socket_outbound_limit, raw), Identity(user, uuid.uuid4()), hub
    )  # type: ignore[arg-type]
    raw.receiver = socket
    hub.attach(socket)
    if access is not None and board is not None:
        access.members.setdefault(board, set()).add(user)
    return socket, raw


def push(socket: Socket, ref: str, topic: str, event: str, join_ref: str | None = None) -> None:
    socket.frame_received(json.dumps([join_ref or ref, ref, topic, event, {}]))


async def drained(raw: FakeRaw) -> None:
    while raw.tasks:
        await asyncio.gather(*raw.tasks)
    await asyncio.sleep(0)


async def test_heartbeats_are_answered_synchronously_with_no_task(world):
    hub, _log, _access, _board = world
    socket, raw = handed_off(hub)
    push(socket, "1", "phoenix", "heartbeat")
    assert raw.frames() == [[None, "1", "phoenix", "phx_reply", {"status": "ok", "response": {}}]]
    assert not raw.tasks
    assert not raw.held


async def test_a_join_in_flight_holds_the_messages_after_it_and_reading(world):
    hub, log, access, board = world
    socket, raw = handed_off(hub, access, board)
    log.read_delay = 0.05
    push(socket, "1", f"board:{board}", "phx_join")
    push(socket, "2", "phoenix", "heartbeat")
    push(socket, "3", f"board:{board}", "phx_leave", join_ref="1")
    assert len(raw.tasks) == 1  # the join
    assert raw.frames() == []  # the heartbeat waits for the join before it
    assert raw.held  # and reading is paused meanwhile
    await drained(raw)
    replies = [(f[1], f[4]["status"]) for f in raw.frames() if f[3] == "phx_reply"]
    assert replies == [("1", "ok"), ("2", "ok"), ("3", "ok")]  # the leave found the join
    assert not raw.held
    assert not socket.joins
    push(socket, "4", "phoenix", "heartbeat")  # back to synchronous
    assert raw.frames()[-1][1] == "4"
    assert not raw.tasks


async def test_a_close_during_a_join_detaches_after_the_join(world):
    hub, log, access, board = world
    socket, raw = handed_off(hub, access, board)
    log.read_delay = 0.05
    push(socket, "1", f"board:{board}", "phx_join")
    socket.connection_closed()  # the peer went while the join reads the log
    assert socket in hub.sockets
    await drained(raw)
    assert socket not in hub.sockets
    assert f"board:{board}" not in hub.topics  # the join that finished after the close is undone
    assert board not in hub.board_topics


async def test_a_slow_reader_closed_inside_a_fan_out_leaves_after_the_loop(world):
    hub, log, access, board = world
    sockets = [handed_off(hub, access, board) for _ in range(3)]
    for i, (socket, raw) in enumerate(sockets):
        push(socket, str(i), f"board:{board}", "phx_join")
        await drained(raw)
    slow_socket, slow = sockets[1]
    slow.transport.buffered = 10 * hub.settings.socket_outbound_limit
    log.commit(hub, board, "card.created", {"id": "c"})
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert slow.closed_with == [1013]
    assert slow_socket not in hub.sockets
    for socket, raw in (sockets[0], sockets[2]):
        assert [f[4]["seq"] for f in raw.frames() if f[3] == "card.created"] == [1]
        assert socket in hub.sockets


async def test_an_exception_in_a_frame_closes_with_1011(world, monkeypatch):
    hub, _log, _access, _board = world
    socket, raw = handed_off(hub)

    def broken(*args: Any) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(Socket, "over_rate", broken)
    push(socket, "1", "x:1", "anything")
    assert raw.closed_with == [1011]
    await asyncio.sleep(0)
    assert socket not in hub.sockets
