"""Gapless, ordered delivery per board, repaired from the event log.

Every process keeps, per board it has sockets on, the last ``seq`` it delivered. Live events
arrive from two paths (this process's own commits, directly; other processes', through the
broker), possibly out of order or with holes (a broker that was down). :class:`BoardFeed` delivers
an event only when it is the next one; on a hole it reads the missing events from the event log,
holding live events meanwhile, then continues. The broker's ``on_reconnect`` calls
:meth:`BoardFeed.catch_up` on every feed, which is how events committed while Redis was away
reach the sockets once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from persistence import eventlog
from persistence.events import Event

log = logging.getLogger("corkboard.replay")
PAGE = 500


class EventLog(Protocol):
    async def events_after(self, board_id: UUID, after_seq: int, limit: int) -> list[Event]: ...

    async def current_seq(self, board_id: UUID) -> int: ...

    async def board_snapshot(self, board_id: UUID) -> tuple[int, bytes]: ...


class DatabaseEventLog:
    """:class:`EventLog` over ``persistence.eventlog``, one short session per call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def events_after(self, board_id: UUID, after_seq: int, limit: int) -> list[Event]:
        async with self.sessions() as session:
            return list(await eventlog.events_after(session, board_id, after_seq, limit))

    async def current_seq(self, board_id: UUID) -> int:
        async with self.sessions() as session:
            return int(await eventlog.current_seq(session, board_id))

    async def board_snapshot(self, board_id: UUID) -> tuple[int, bytes]:
        async with self.sessions() as session:
            seq, body = await eventlog.board_snapshot(session, board_id)
            return int(seq), bytes(body)


class BoardFeed:
    """In-order delivery of one board's events to this process's sockets (see module docstring)."""

    __slots__ = ("_held", "_task", "board_id", "deliver", "last_seq", "log")

    def __init__(self, board_id: UUID, log: EventLog, deliver: Callable[[Sequence[Event]], None]) -> None:
        self.board_id = board_id
        self.log = log
        self.deliver = deliver
        self.last_seq: int | None = None
        self._held: list[Event] = []
        self._task: asyncio.Task[None] | None = None

    def known(self, seq: int) -> None:
        """A join read ``seq`` from the log: the feed starts there if it had no position yet."""
        if self.last_seq is None:
            self.last_seq = seq

    def offer(self, events: Sequence[Event]) -> None:
        if self._task is not None:
            self._held.extend(events)
            return
        ready: list[Event] = []
        ordered = sorted(events, key=lambda e: e.seq)
        for index, event in enumerate(ordered):
            if self.last_seq is None or event.seq == self.last_seq + 1:
                ready.append(event)
                self.last_seq = event.seq
            elif event.seq > self.last_seq + 1:
                self._held.extend(ordered[index:])
                self.catch_up()
                break
        if ready:
            self.deliver(ready)

    def catch_up(self) -> None:
        """Read what this process missed from the log (no-op while one is running)."""
        if self._task is None and self.last_seq is not None:
            self._task = asyncio.get_running_loop().create_task(self._repair())

    async def _repair(self) -> None:
        try:
            while True:
                assert self.last_seq is not None
                missed = await self.log.events_after(self.board_id, self.last_seq, PAGE)
                fresh = [e for e in missed if e.seq > self.last_seq]
                if fresh:
                    self.last_seq = fresh[-1].seq
                    self.deliver(fresh)
                if len(missed) < PAGE:
                    break
        except Exception:
            log.exception("catching up board %s from the event log failed", self.board_id)
        finally:
            self._task = None
        held, self._held = self._held, []
        if held:
            self.offer(held)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(Exception):
                self._task = None
