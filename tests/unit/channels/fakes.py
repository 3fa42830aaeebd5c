"""In-memory stand-ins for the database-backed parts of the hub (auth, access, event log)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from channels.connection import Connection
from channels.hub import Hub
from channels.socket import Socket, handle_frame
from channels.topics import BOARD, CARD, LIST, Grant, Identity, Topic
from persistence.events import Event
from server.settings import Settings


class FakeLog:
    def __init__(self) -> None:
        self.events: dict[UUID, list[Event]] = {}
        self.read_delay = 0.0

    def append(self, board: UUID, type_: str, data: dict[str, Any]) -> Event:
        """An event in the log only (as committed by another instance)."""
        log = self.events.setdefault(board, [])
        event = Event(
            seq=len(log) + 1,
            type=type_,
            board_id=board,
            actor_id=None,
            at=datetime.now(UTC),
            data=msgspec.Raw(json.dumps(data).encode()),
        )
        log.append(event)
        return event

    def commit(self, hub: Hub, board: UUID, type_: str, data: dict[str, Any]) -> Event:
        event = self.append(board, type_, data)
        hub.sink.publish_events([event])
        return event

    async def events_after(self, board_id: UUID, after_seq: int, limit: int) -> list[Event]:
        await asyncio.sleep(self.read_delay)
        return [e for e in self.events.get(board_id, []) if e.seq > after_seq][:limit]

    async def current_seq(self, board_id: UUID) -> int:
        return len(self.events.get(board_id, []))

    async def board_snapshot(self, board_id: UUID) -> tuple[int, bytes]:
        seq = len(self.events.get(board_id, []))
        return seq, json.dumps({"id": str(board_id), "seen_seq": seq}).encode()


class FakeAccess:
    def __init__(self) -> None:
        self.members: dict[UUID, set[UUID]] = {}
        self.lists: dict[UUID, UUID] = {}
        self.cards: dict[UUID, UUID] = {}

    async def board_for(self, topic: Topic, user_id: UUID) -> Grant | None:
        board = {BOARD: topic.id, LIST: self.lists.get(topic.id), CARD: self.cards.get(topic.id)}.get(
            topic.kind
        )
        if board is None or user_id not in self.members.get(board, set()):
            return None
        return Grant(board, "member")


class FakeAuth:
    def __init__(self) -> None:
        self.dead: set[UUID] = set()

    async def authenticate(self, token: str) -> Identity | None:
        return None

    async def revoked(self, credential_ids: set[UUID]) -> set[UUID]:
        return credential_ids & self.dead


def settings(**overrides: Any) -> Settings:
    return Settings(secret_key="k" * 32, **overrides)


class Client:
    """A socket attached to a hub, recording what the hub writes to it."""

    def __init__(self, hub: Hub, user: UUID | None = None, credential: UUID | None = None) -> None:
        self.hub = hub
        self.sent: list[Any] = []
        self.closed: int | None = None
        self.user = user or uuid.uuid4()
        self.socket = Socket(
            Connection(self._send, hub.settings.socket_outbound_limit),
            Identity(self.user, credential or uuid.uuid4()),
        )
        hub.attach(self.socket)
        self.refs = 0

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.sent.append(json.loads(message["text"]))
        else:
            self.closed = message["code"]

    async def push(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        self.refs += 1
        ref = str(self.refs)
        await handle_frame(self.hub, self.socket, json.dumps([join_ref or ref, ref, topic, event, payload]))
        return ref

    async def join(self, topic: str, payload: Any = None) -> dict[str, Any]:
        ref = await self.push(topic, "phx_join", payload or {})
        return self.reply(ref)

    def reply(self, ref: str) -> dict[str, Any]:
        found = [f for f in self.sent if f[3] == "phx_reply" and f[1] == ref]
        assert found, self.sent
        result: dict[str, Any] = found[0][4]
        return result

    def events(self, topic: str | None = None) -> list[Any]:
        return [
            f
            for f in self.sent
            if f[1] is None
            and f[3] not in ("presence_state", "presence_diff")
            and (topic is None or f[2] == topic)
        ]

    def seqs(self, topic: str) -> list[int]:
        return [f[4]["seq"] for f in self.events(topic) if isinstance(f[4], dict) and "seq" in f[4]]


class RecordingTransport:
    """The part of an asyncio transport that channels/fastpath.py writes to: it records each write
    and reports ``buffered`` bytes waiting (set it above the bound to play a slow reader)."""

    def __init__(self, buffered: int = 0) -> None:
        self.data: list[bytes] = []
        self.buffered = buffered

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.data.append(data)


class FakeWriteSide:
    """What Connection writes through on the fast path (channels/fastpath.py): the protocol's
    open-for-data flags, a recording transport, and ``close_with``, which records the code."""

    def __init__(self) -> None:
        self.transport = RecordingTransport()
        self.handshake_complete = True
        self.close_sent = False
        self.initial_response = None
        self.closed_with: list[int] = []

    def close_with(self, code: int) -> None:
        if self.close_sent:
            return
        self.close_sent = True
        self.closed_with.append(code)
