"""The real-time layer as the app sees it: the event sink, the socket route, the lifecycle.

The hub keeps this process's registry (topic -> joined sockets), subscribes to one broker
channel per board it has sockets on, encodes each event once per process and hands the frame to
the fan-out (channels/fanout.py), which writes it to every joined socket in sweeps of a slice of
sockets per loop turn. Control messages (sessions revoked, access revoked,
board deleted, user messages) go to every process through the broker as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from litestar import asgi
from litestar.types import ControllerRouterHandler, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import bus, control, joins, metrics, protocol
from channels.broker import Broker, MemoryBroker
from channels.fanout import FanOut
from channels.presence import PresenceTracker
from channels.replay import BoardFeed, DatabaseEventLog, EventLog
from channels.routing import topics_for
from channels.socket import Socket, origin_of, serve_socket
from channels.topics import (
    BOARD,
    CARD,
    Authenticator,
    DatabaseAccess,
    Identity,
    TopicAccess,
    Unavailable,
)
from persistence import db
from persistence.events import Control, ControlListener, Event

log = logging.getLogger("corkboard.hub")
CLOSE_RESTART = 1012
CLOSE_IDLE = 1001
# While the broker is away, how often each socket's board access is read again (a query per
# board and user, so less often than the sessions, which are one query for all of them).
BROKER_DOWN_ACCESS_EVERY = 30.0


class Member:
    """One socket's join of one topic. ``buffer`` is a list while the join replays, else None;
    ``after`` is the last ``seq`` it was given, by its join or the fan-out (it gets only newer)."""

    __slots__ = (
        "after",
        "board_id",
        "buffer",
        "join_ref",
        "may_edit",
        "presence_ref",
        "presence_updates",
        "presence_window",
        "socket",
        "topic",
    )

    def __init__(self, socket: Socket, topic: str, join_ref: str | None, board_id: UUID | None) -> None:
        self.socket = socket
        self.topic = topic
        self.join_ref = join_ref
        self.board_id = board_id
        self.buffer: list[tuple[int, str]] | None = []
        self.after = 0
        self.presence_ref: str | None = None
        self.may_edit = False  # may send ephemeral (set by the join from the role and the token)
        self.presence_window = 0  # the second (monotonic, whole) of the last presence update
        self.presence_updates = 0  # presence updates in that second


class Hub:
    """See the module docstring. ``sink`` is the hub itself (``publish_events``/``publish_control``)."""

    def __init__(
        self,
        settings: Any,
        *,
        authenticator: Authenticator,
        access: TopicAccess,
        eventlog: EventLog,
        redis: Any = None,
    ) -> None:
        self.settings = settings
        self.authenticator = authenticator
        self.access = access
        self.eventlog = eventlog
        self.instance_id = uuid.uuid4().hex[:12]
        self.prefix = f"{settings.redis_prefix}:rt"
        self.control_channel = f"{self.prefix}:control"
        self.broker: Broker
        if redis is not None:
            from channels.broker.redis import RedisBroker

            self.broker = RedisBroker(redis, self._on_bus, self._on_reconnect)
        else:
            self.broker = MemoryBroker(self._on_bus, self._on_reconnect)
        self.presence = PresenceTracker(
            instance_id=self.instance_id,
            broadcast=self.broadcast,
            publish=self._publish_presence,
            redis=redis,
            prefix=settings.redis_prefix,
            ttl=settings.presence_ttl,
            coalesce_ms=settings.presence_coalesce_ms,
        )
        self.sockets: set[Socket] = set()
        self.by_credential: dict[UUID, set[Socket]] = {}
        self.topics: dict[str, dict[Socket, Member]] = {}
        self.board_topics: dict[UUID, set[str]] = {}
        self.feeds: dict[UUID, BoardFeed] = {}
        self.fanout = FanOut(self.topics, settings.fanout_slice)
        self.control_listeners: list[ControlListener] = []
        # Origins a browser page may open a socket from (besides the server's own): CORS_ORIGINS and
        # the origin of PUBLIC_URL, where the served pages and the mails' links live.
        self.allowed_origins = frozenset(
            {origin_of(o) if o != "*" else o for o in settings.cors_origins}
            | {origin_of(settings.public_url)}
        )
        self.stopping = False
        self._maintenance: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sink(self) -> Hub:
        return self

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.stopping = False
        await self.broker.start()
        await self.broker.subscribe(self.control_channel)
        metrics.BROKER_CONNECTED.set_function(lambda: float(self.broker.connected))
        self._maintenance = asyncio.create_task(self._maintain(), name="hub-maintenance")

    async def stop(self) -> None:
        """Close every socket with 1012 (clients reconnect elsewhere) and leave the broker."""
        self.stopping = True
        self.fanout.drain()  # what is committed reaches the sockets before their close frames
        for socket in list(self.sockets):
            socket.close(CLOSE_RESTART)
        with contextlib.suppress(Exception):
            await self.presence.withdraw_all()
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        for feed in self.feeds.values():
            feed.cancel()
        await asyncio.sleep(0.05)  # let the presence leaves reach the broker
        await self.broker.stop()

    def route_handlers(self) -> list[ControllerRouterHandler]:
        hub = self

        @asgi("/socket/websocket", is_mount=False, copy_scope=False)
        async def phoenix_socket(scope: Scope, receive: Receive, send: Send) -> None:
            await serve_socket(hub, scope, receive, send)  # type: ignore[arg-type]

        return [phoenix_socket]

    def plugins(self) -> list[Any]:
        return []

    async def _maintain(self) -> None:
        """One task per process: heartbeat timeouts, presence upkeep, and while the broker is
        away (no revocation can reach this process), re-verifying the open sockets' credentials
        against the database every tick and their board access every ``BROKER_DOWN_ACCESS_EVERY``
        seconds. The broker's return re-verifies both once more (:func:`control.on_reconnect`)."""
        tick = max(0.5, min(5.0, self.settings.heartbeat_timeout / 4, self.settings.presence_ttl / 6))
        last_refresh = time.monotonic()
        last_access_check = 0.0
        while True:
            await asyncio.sleep(tick)
            now, wall = time.monotonic(), time.time()
            for socket in list(self.sockets):
                if now - socket.last_seen > self.settings.heartbeat_timeout:
                    socket.close(CLOSE_IDLE)
                elif socket.identity.expired(wall):
                    socket.close(control.CLOSE_REVOKED)  # its session or token expired: as revoked
            if not self.broker.connected:
                try:
                    await control.reverify_sessions(self)
                    if now - last_access_check >= BROKER_DOWN_ACCESS_EVERY:
                        last_access_check = now
                        await control.reverify_access(self)
                except Exception as exc:  # the database may be away too: try again next tick
                    log.warning("re-verifying sockets while the broker is away failed: %s", exc)
            else:
                last_access_check = 0.0
            try:
                if now - last_refresh >= self.settings.presence_ttl / 3:
                    last_refresh = now
                    await self.presence.refresh()
                await self.presence.sync()
            except Exception:
                log.exception("presence upkeep failed")

    # ------------------------------------------------------------------ sockets
    async def authenticate(self, token: str | None) -> Identity | None:
        """The token's identity, or None for a bad one; :class:`~channels.topics.Unavailable` when
        the database cannot tell (the client should retry, not drop its token)."""
        if not token:
            return None
        try:
            return await self.authenticator.authenticate(token)
        except Exception as exc:
            if db.unavailable(exc):
                log.warning("socket authentication: the database is unavailable (%s)", type(exc).__name__)
                raise Unavailable from exc
            log.exception("socket authentication failed")
            return None

    def attach(self, socket: Socket) -> None:
        self.sockets.add(socket)
        self.by_credential.setdefault(socket.identity.credential_id, set()).add(socket)
        metrics.SOCKETS_OPEN.inc()

    def detach(self, socket: Socket) -> None:
        if socket not in self.sockets:
            return
        self.sockets.discard(socket)
        peers = self.by_credential.get(socket.identity.credential_id)
        if peers is not None:
            peers.discard(socket)
            if not peers:
                del self.by_credential[socket.identity.credential_id]
        for topic in list(socket.joins):
            self.leave(socket, topic)
        socket.conn.closed = True
        metrics.SOCKETS_OPEN.dec()

    def leave(self, socket: Socket, topic: str) -> Member | None:
        member = socket.joins.pop(topic, None)
        if member is None:
            return None
        members = self.topics.get(topic)
        if members is not None and members.get(socket) is member:
            del members[socket]
            if not members:
                del self.topics[topic]
        if member.presence_ref is not None:
            self.presence.untrack(topic, member.presence_ref)
            member.presence_ref = None
        if topic not in self.topics:
            self.presence.forget(topic)
            if member.board_id is not None:
                self._release_board(member.board_id, topic)
        return member

    def close_member(self, member: Member) -> None:
        """Server-side close of one join (access lost): ``phx_close`` to the client."""
        if self.leave(member.socket, member.topic) is not None:
            member.socket.send(protocol.push(member.topic, protocol.CLOSE, {}, join_ref=member.join_ref))

    async def _hold_board(self, board_id: UUID, topic: str) -> BoardFeed:
        topics = self.board_topics.setdefault(board_id, set())
        topics.add(topic)
        feed = self.feeds.get(board_id)
        if feed is None:
            feed = self.feeds[board_id] = BoardFeed(board_id, self.eventlog, self._deliver_factory(board_id))
            await self.broker.subscribe(self.board_channel(board_id))
        return feed

    def _release_board(self, board_id: UUID, topic: str) -> None:
        topics = self.board_topics.get(board_id)
        if topics is None:
            return
        topics.discard(topic)
        if topics:
            return
        del self.board_topics[board_id]
        feed = self.feeds.pop(board_id, None)
        if feed is not None:
            feed.cancel()
        if self._loop is not None and not self.stopping:
            self._loop.create_task(self._unsubscribe_if_idle(board_id))

    async def _unsubscribe_if_idle(self, board_id: UUID) -> None:
        if board_id not in self.board_topics:
            await self.broker.unsubscribe(self.board_channel(board_id))

    def board_channel(self, board_id: UUID) -> str:
        return f"{self.prefix}:board:{board_id}"

    # ------------------------------------------------------------------ fan-out
    def broadcast(self, topic: str, text: str, exclude: Socket | None = None) -> int:
        """Write one pre-encoded frame to every live (not replaying) socket of ``topic``."""
        members = self.topics.get(topic)
        if not members:
            return 0
        sent = 0
        for socket, member in members.items():
            if member.buffer is None and socket is not exclude:
                socket.conn.send_text(text)
                sent += 1
        metrics.MESSAGES_OUT.inc(sent)
        return sent

    def _deliver_factory(self, board_id: UUID) -> Any:
        def deliver(events: Sequence[Event]) -> None:
            self.deliver(board_id, events)

        return deliver

    def deliver(self, board_id: UUID, events: Sequence[Event]) -> None:
        """Events in seq order, each encoded once, to every local topic they concern.

        The frames go to :class:`~channels.fanout.FanOut`: a topic's first slice of sockets is
        written now, the rest on the next loop turns; later events join the sweep under way.
        """
        topics = self.board_topics.get(board_id)
        if not topics:
            return
        fanout = self.fanout
        for event in events:
            envelope = protocol.encode_event(event)
            at = event.at.timestamp()
            for topic in topics_for(event, topics):
                fanout.add(topic, event.seq, protocol.event_frame(topic, event.type, envelope), at)
        fanout.start()

    # ------------------------------------------------------------------ the sink
    def publish_events(self, events: Sequence[Event]) -> None:
        """Called right after a commit: publish to the broker, then deliver locally.

        Inside the hub's running loop (SQLAlchemy's asyncio sessions run ``after_commit`` there)
        this happens now, not on a later loop turn: the rest of the request would run first, and
        in the cluster bench that wait was a millisecond of every event's delivery. From another
        thread it is handed to the loop.
        """
        if not events:
            return
        self._run_on_loop(self._publish_events_now, list(events))

    def _run_on_loop(self, fn: Any, arg: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        if asyncio._get_running_loop() is not loop:
            loop.call_soon_threadsafe(fn, arg)
            return
        try:
            fn(arg)
        except Exception:  # never out of after_commit: the transaction is committed already
            log.exception("publishing after commit failed")

    def _publish_events_now(self, events: list[Event]) -> None:
        by_board: dict[UUID, list[Event]] = {}
        for event in events:
            by_board.setdefault(event.board_id, []).append(event)
        for board_id, batch in by_board.items():
            # The broker first: its write is one syscall, the local fan-out may be thousands, and
            # the other instances can deliver meanwhile.
            message = bus.EventsMsg(
                origin=self.instance_id, board_id=str(board_id), events=batch, sent=time.time()
            )
            self.broker.publish(self.board_channel(board_id), bus.encode(message))
            feed = self.feeds.get(board_id)
            if feed is not None:
                feed.offer(batch)

    def publish_control(self, message: Control) -> None:
        self._run_on_loop(self._publish_control_now, message)

    def _publish_control_now(self, message: Control) -> None:
        self.broker.publish(
            self.control_channel, bus.encode(bus.ControlMsg(origin=self.instance_id, message=message))
        )
        self.handle_control(message)

    def handle_control(self, message: Control) -> None:
        control.handle(self, message)

    def _on_bus(self, channel: str, data: bytes) -> None:
        control.dispatch(self, channel, data)

    async def _on_reconnect(self) -> None:
        await control.on_reconnect(self)

    async def reverify(self) -> None:
        await control.reverify(self)

    def _publish_presence(self, topic: str, message: bus.PresenceMsg) -> None:
        members = self.topics.get(topic)
        board_id = next((m.board_id for m in members.values()), None) if members else None
        if board_id is None:
            board_id = self._board_of_presence_topic(topic)
        if board_id is not None:
            self.broker.publish(self.board_channel(board_id), bus.encode(message))

    def _board_of_presence_topic(self, topic: str) -> UUID | None:
        for board_id, topics in self.board_topics.items():
            if topic in topics:
                return board_id
        return None

    # ------------------------------------------------------------------ client pushes
    async def join(self, socket: Socket, frame: protocol.Frame) -> None:
        await joins.join(self, socket, frame)

    def update_presence(self, member: Member, meta: dict[str, Any]) -> str | None:
        """Replace the member's presence meta; the error reason when it may not (SPEC §6 bounds)."""
        if member.presence_ref is None:
            return "presence_limit"  # joined past PRESENCE_METAS_PER_USER: not tracked
        second = int(time.monotonic())
        if second != member.presence_window:
            member.presence_window, member.presence_updates = second, 0
        if member.presence_updates >= self.settings.presence_updates_per_second:
            return "rate_limited"
        member.presence_updates += 1
        member.presence_ref = self.presence.update(
            member.topic, member.presence_ref, str(member.socket.identity.user_id), meta
        )
        return None

    def relay_ephemeral(self, member: Member, payload: protocol.EphemeralPayload) -> None:
        user_id = str(member.socket.identity.user_id)
        body = {"user_id": user_id, "kind": payload.kind, "data": payload.data}
        self.broadcast(member.topic, protocol.push(member.topic, "ephemeral", body), exclude=member.socket)
        if member.board_id is not None:
            message = bus.EphemeralMsg(
                origin=self.instance_id,
                topic=member.topic,
                user_id=user_id,
                kind=payload.kind,
                data=payload.data,
            )
            self.broker.publish(self.board_channel(member.board_id), bus.encode(message))


def create_hub(
    settings: Any,
    redis: Any,
    db_config: Any,
    authenticator: Callable[[async_sessionmaker[AsyncSession]], Authenticator],
) -> Hub:
    """The hub for the app factory: database-backed access and event log, the ``authenticator`` the
    caller makes over the hub's sessions, and Redis if configured."""
    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
        db_config.get_engine(), expire_on_commit=False
    )
    return Hub(
        settings,
        authenticator=authenticator(sessions),
        access=DatabaseAccess(sessions),
        eventlog=DatabaseEventLog(sessions),
        redis=redis,
    )


__all__ = ["BOARD", "CARD", "Hub", "Member", "create_hub"]
