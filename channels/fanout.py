"""Events to the sockets of their topics: sweeps over a topic's members, a slice of sockets per
loop turn, each socket written once per sweep with every frame it is missing.

Why: on loopback most of a delivery's cost is the kernel's, once per ``transport.write`` (the
``send`` syscall, the TCP segment, waking the reader, its ACK), not per byte. Two events written
to 2,000 sockets as one write each cost 5.1 to 6.0 µs of server CPU per delivery against 10.1 to
12.7 as two writes each (``python -m bench.deliver --per-pass 2``, docs/performance.md, "Session 7").
So when events come faster than a topic's sockets can be written, each socket gets what piled up
for it in one write. Under light load a sweep carries one event and this is the plain fan-out;
under load the writes grow by themselves and the cost per delivery falls, where a write per event
per socket would queue without bound.

How: a topic keeps the frames not yet written to all its members (in ``seq`` order: the board's
feed orders them). A sweep visits the members the topic had when it began, ``slice_size`` sockets
per loop turn over all topics, the first slice at once (inside the commit's ``after_commit`` for
this process's own changes, so a topic smaller than a slice is written before the request
returns). Each member is written every frame newer than its ``Member.after`` (the last ``seq`` it
was given) in one write. A frame added during a sweep reaches the members the sweep has not
visited yet in that sweep, and the others in the next one, which begins when this one ends. Between
slices the loop serves requests and sockets, so a 2,000-socket board does not hold a REST
response for its whole fan-out.

Exactly once and in order, per socket and topic:

- ``Member.after`` only grows, and a member gets only frames newer than it.
- A member that left its topic, or was replaced by a rejoin, during a sweep is skipped.
- A member still replaying (``buffer`` not None) gets the frames in its buffer, as before
  (channels/joins.py); its join sets ``after`` to the last ``seq`` it sent when it goes live.
- A member that joins during a sweep is in the next one; the frames it could miss were added
  before it registered, so its join's log read covers them. That is also why a sweep may drop, when
  it begins, the frames older than the previous sweep's start.
- The ``after`` check also removes a duplicate the synchronous fan-out had: an event committed on
  another instance that a join read from the log before the broker brought it here.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from channels import fastpath, metrics

if TYPE_CHECKING:
    from channels.hub import Member
    from channels.socket import Socket

DEFAULT_SLICE: Final = 64


class TopicOut:
    """One topic's frames not yet written to all its members, and its sweep under way."""

    __slots__ = ("ats", "blobs", "framed", "index", "members", "seqs", "start", "texts", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.seqs: list[int] = []
        self.texts: list[str] = []
        self.framed: list[bytes] = []
        self.ats: list[float] = []  # commit times, for the latency metric
        self.blobs: dict[int, tuple[bytes, list[str]]] = {}  # by ``after``: the frames newer, joined
        self.members: list[tuple[Socket, Member]] = []
        self.index = 0
        self.start = 0  # the newest seq when the sweep under way began

    def add(self, seq: int, text: str, at: float) -> None:
        self.seqs.append(seq)
        self.texts.append(text)
        self.framed.append(fastpath.frame(text.encode()))
        self.ats.append(at)
        self.blobs.clear()

    @property
    def sweeping(self) -> bool:
        return self.index < len(self.members)

    @property
    def behind(self) -> bool:
        """Frames came after the last sweep began: another sweep is due."""
        return bool(self.seqs) and self.seqs[-1] > self.start

    def begin(self, members: Mapping[Socket, Member] | None) -> bool:
        """Start a sweep over ``members`` for the frames since the last one began; False if none."""
        drop = bisect_right(self.seqs, self.start)
        if drop:
            del self.seqs[:drop], self.texts[:drop], self.framed[:drop], self.ats[:drop]
            self.blobs.clear()
        if not self.seqs or not members:
            return False  # nothing new, or nobody left to write it to
        self.start = self.seqs[-1]
        self.members = list(members.items())
        self.index = 0
        return True

    def finish(self) -> None:
        """The sweep is over: the frames up to its start reached every member."""
        now = time.time()
        done = bisect_right(self.seqs, self.start)
        for at in self.ats[:done]:
            metrics.FANOUT_LATENCY.observe(max(0.0, now - at))
        self.members = []
        self.index = 0

    def _newer(self, after: int) -> tuple[bytes, list[str]]:
        found = self.blobs.get(after)
        if found is None:
            i = bisect_right(self.seqs, after)
            found = self.blobs[after] = (b"".join(self.framed[i:]), self.texts[i:])
        return found

    def run(self, budget: int) -> tuple[int, int, int]:
        """Visit the next ``budget`` members; returns (members visited, writes, frames written)."""
        members = self.members
        start = self.index
        end = min(len(members), start + budget)
        topic = self.topic
        head = self.seqs[-1]
        blobs = self.blobs
        writes = frames = 0
        for socket, member in members[start:end]:
            after = member.after
            if after >= head or socket.joins.get(topic) is not member:
                continue  # up to date; or left, or rejoined (a new member) since the sweep began
            found = blobs.get(after)
            blob, texts = found if found is not None else self._newer(after)
            member.after = head
            buffer = member.buffer
            if buffer is not None:  # still replaying: its join sends what it has not replayed
                buffer.extend(zip(self.seqs[-len(texts) :], texts, strict=True))
                continue
            socket.conn.send_texts(texts, blob)
            writes += 1
            frames += len(texts)
        self.index = end
        return end - start, writes, frames


class FanOut:
    """The sweeps of every topic of this process (see the module docstring).

    Args:
        topics: The hub's registry, topic -> {socket: member}; read when a sweep begins.
        slice_size: Sockets visited per loop turn, over all topics.
    """

    def __init__(
        self, topics: Mapping[str, Mapping[Socket, Member]], slice_size: int = DEFAULT_SLICE
    ) -> None:
        self.topics = topics
        self.slice_size = slice_size
        self.outs: dict[str, TopicOut] = {}
        self.queue: deque[TopicOut] = deque()  # topics with a sweep under way, in turn
        self._scheduled = False

    def add(self, topic: str, seq: int, text: str, at: float) -> None:
        """One event's frame for ``topic`` (``at``: its commit time, for the latency metric)."""
        out = self.outs.get(topic)
        if out is None:
            out = self.outs[topic] = TopicOut(topic)
        out.add(seq, text, at)

    def start(self) -> None:
        """Begin a sweep for each topic with new frames and none under way; visit a slice now."""
        for out in list(self.outs.values()):
            if not out.sweeping:
                self._begin(out, first=True)
        self._step(self.slice_size)

    def drain(self) -> None:
        """Write everything waiting now, whatever its size (before the hub closes its sockets)."""
        for out in list(self.outs.values()):
            if not out.sweeping:
                self._begin(out, first=False)
        while self.queue:
            self._step(None)

    @property
    def idle(self) -> bool:
        return not self.outs

    def _begin(self, out: TopicOut, *, first: bool) -> None:
        if not out.begin(self.topics.get(out.topic)):
            del self.outs[out.topic]
        elif first:
            self.queue.appendleft(out)  # the new event's first slice goes out now
        else:
            self.queue.append(out)

    def _step(self, budget: int | None) -> None:
        queue = self.queue
        left = budget
        writes = frames = 0
        while queue and (left is None or left > 0):
            out = queue[0]
            visited, w, f = out.run(len(out.members) if left is None else left)
            writes += w
            frames += f
            if left is not None:
                left -= visited
            if not out.sweeping:
                queue.popleft()
                out.finish()
                self._begin(out, first=False)  # frames that came during the sweep: the next one
            elif len(queue) > 1:
                queue.rotate(-1)  # the other topics' sweeps get the next slices
        if writes:
            metrics.MESSAGES_OUT.inc(frames)
            metrics.FANOUT_WRITES.inc(writes)
            metrics.FANOUT_FRAMES.inc(frames)
        if queue and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self._step(self.slice_size)
