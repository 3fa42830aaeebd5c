"""The fan-out's sweeps (channels/fanout.py): a slice of sockets per loop turn, every frame a socket
is missing in one write, each event exactly once and in order per socket."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from channels import metrics
from channels.connection import CLOSE_SLOW, Connection
from channels.fanout import FanOut
from channels.hub import Member
from channels.socket import Socket
from channels.topics import Identity
from tests.unit.channels.fakes import FakeWriteSide

pytestmark = pytest.mark.timeout(30)
TOPIC = "board:b"
LIMIT = 1 << 20


class Peer:
    def __init__(self, topics: dict[str, dict[Socket, Member]], topic: str = TOPIC) -> None:
        self.raw = FakeWriteSide()
        self.socket = Socket(Connection(None, LIMIT, raw=self.raw), Identity(uuid.uuid4(), uuid.uuid4()))  # type: ignore[arg-type]
        self.member = join(topics, self.socket, topic)

    def writes(self) -> list[list[int]]:
        """The seqs each write carried, write by write."""
        return [[frame[4]["seq"] for frame in parse(data)] for data in self.raw.transport.data]

    def seqs(self) -> list[int]:
        return [seq for write in self.writes() for seq in write]


def crowd(size: int, slice_size: int = 64, topic: str = TOPIC) -> tuple[list[Peer], FanOut]:
    """``size`` sockets joined to ``topic``, and a fan-out over their registry."""
    topics: dict[str, dict[Socket, Member]] = {}
    peers = [Peer(topics, topic) for _ in range(size)]
    return peers, FanOut(topics, slice_size)


def join(topics: dict[str, dict[Socket, Member]], socket: Socket, topic: str) -> Member:
    member = Member(socket, topic, "1", None)
    member.buffer = None
    socket.joins[topic] = member
    topics.setdefault(topic, {})[socket] = member
    return member


def parse(data: bytes) -> list[Any]:
    """Unmasked final text frames, as the fast path writes them, back to Phoenix messages."""
    out, i = [], 0
    while i < len(data):
        assert data[i] == 0x81
        assert data[i + 1] & 0x80 == 0
        size, i = data[i + 1], i + 2
        if size == 126:
            size, i = int.from_bytes(data[i : i + 2], "big"), i + 2
        out.append(json.loads(data[i : i + size]))
        i += size
    return out


def frame(seq: int, topic: str = TOPIC) -> str:
    return json.dumps([None, None, topic, "card.updated", {"seq": seq, "data": "x" * 40}])


def add(fanout: FanOut, *seqs: int, topic: str = TOPIC) -> None:
    for seq in seqs:
        fanout.add(topic, seq, frame(seq, topic), 0.0)


async def until_idle(fanout: FanOut) -> None:
    for _ in range(1000):
        if fanout.idle:
            return
        await asyncio.sleep(0)
    raise AssertionError("the fan-out never finished")


async def test_a_topic_smaller_than_a_slice_is_written_before_start_returns():
    peers, fanout = crowd(3, slice_size=64)
    add(fanout, 1)
    fanout.start()
    assert [p.writes() for p in peers] == [[[1]]] * 3
    assert fanout.idle


async def test_frames_that_come_during_a_sweep_go_out_together_each_once_and_in_order():
    peers, fanout = crowd(10, slice_size=4)
    writes0, frames0 = metrics.FANOUT_WRITES._value.get(), metrics.FANOUT_FRAMES._value.get()
    add(fanout, 1)
    fanout.start()
    assert [len(p.writes()) for p in peers] == [1] * 4 + [0] * 6  # the first slice, at once
    add(fanout, 2, 3)
    fanout.start()  # a sweep is under way: the next slice, with what piled up
    await until_idle(fanout)
    assert [p.writes() for p in peers[:4]] == [[[1], [2, 3]]] * 4  # visited before 2 and 3 came
    assert [p.writes() for p in peers[4:]] == [[[1, 2, 3]]] * 6  # one write for all three
    assert metrics.FANOUT_WRITES._value.get() - writes0 == 14
    assert metrics.FANOUT_FRAMES._value.get() - frames0 == 30


async def test_the_sweeps_of_two_topics_take_turns():
    topics: dict[str, dict[Socket, Member]] = {}
    big = [Peer(topics, "board:big") for _ in range(8)]
    small = Peer(topics, "board:small")
    fanout = FanOut(topics, slice_size=2)
    add(fanout, 1, topic="board:big")
    fanout.start()
    add(fanout, 1, topic="board:small")
    fanout.start()
    assert small.seqs() == [1]  # its first slice went out at once, ahead of the big sweep
    assert sum(len(p.writes()) for p in big) == 3  # 2, then the slice's other socket
    await until_idle(fanout)
    assert [p.seqs() for p in big] == [[1]] * 8


async def test_a_member_that_leaves_or_rejoins_during_a_sweep_is_skipped():
    peers, fanout = crowd(4, slice_size=2)
    topics = fanout.topics  # the registry dict crowd() made, as the hub's leave and join change it
    add(fanout, 1)
    fanout.start()
    gone, again = peers[2], peers[3]
    del gone.socket.joins[TOPIC], topics[TOPIC][gone.socket]
    rejoined = join(topics, again.socket, TOPIC)  # a new member; its join replayed up to 1
    rejoined.after = 1
    await until_idle(fanout)
    assert gone.writes() == []
    assert again.writes() == []
    add(fanout, 2)
    fanout.start()
    await until_idle(fanout)
    assert gone.writes() == []
    assert again.writes() == [[2]]
    assert [p.seqs() for p in peers[:2]] == [[1, 2]] * 2


async def test_a_member_whose_join_sent_some_frames_gets_only_the_newer_ones():
    (peer,), fanout = crowd(1)
    peer.member.after = 5  # its join's burst ended with seq 5
    add(fanout, 4, 5, 6)
    fanout.start()
    assert peer.writes() == [[6]]
    add(fanout, 7)
    fanout.start()
    assert peer.writes() == [[6], [7]]


async def test_a_replaying_member_gets_the_frames_in_its_buffer_not_its_socket():
    (peer,), fanout = crowd(1)
    peer.member.buffer = []
    add(fanout, 1, 2)
    fanout.start()
    assert peer.writes() == []
    assert peer.member.buffer == [(1, frame(1)), (2, frame(2))]


async def test_drain_writes_everything_now():
    peers, fanout = crowd(5, slice_size=1)
    add(fanout, 1)
    fanout.start()
    add(fanout, 2)
    fanout.drain()
    assert fanout.idle
    assert [p.seqs() for p in peers] == [[1, 2]] * 5


async def test_a_reader_over_the_outbound_bound_is_closed_and_the_others_still_get_the_frames():
    peers, fanout = crowd(3)
    peers[1].raw.transport.buffered = LIMIT + 1
    add(fanout, 1)
    fanout.start()
    assert peers[1].raw.closed_with == [CLOSE_SLOW]
    assert peers[1].writes() == []
    assert peers[0].seqs() == [1]
    assert peers[2].seqs() == [1]
