"""Redis pub/sub broker: one subscriber connection per process, one SUBSCRIBE per channel.

Publishing has a connection of its own. ``publish`` writes the ``PUBLISH`` to that connection's
transport at once, in the caller's loop turn (no task, queue or event wake-up between a commit and
Redis: in the cluster bench that hop cost about as much as the trip through Redis itself), and
never blocks: a write that would have to wait for the transport, and every message published
while Redis is unreachable, stays in a bounded queue (the oldest are dropped past the bound) that
the publisher task writes in order once it can. Everything goes out on that one connection in
call order, so two commits on one board reach Redis in commit order. The publisher task reads the
replies; a message whose reply never came (the connection broke) is written again after the
reconnect, before anything newer. The subscriber reconnects with backoff, re-subscribes every
channel and then calls ``on_reconnect`` so the hub can fetch what it missed from the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from channels.broker.base import Broker, MessageHandler, ReconnectHandler
from channels.connection import resume

log = logging.getLogger("corkboard.broker")
MAX_QUEUED = 10_000
MAX_QUEUED_BYTES = 8 * 1024 * 1024
BATCH = 200
BATCH_BYTES = 512 * 1024


class RedisBroker(Broker):
    """Redis pub/sub with reconnection; see the module docstring."""

    def __init__(
        self, redis: Redis, on_message: MessageHandler, on_reconnect: ReconnectHandler | None = None
    ) -> None:
        super().__init__(on_message, on_reconnect)
        self.redis = redis
        self.channels: set[str] = set()
        self._outbox: deque[tuple[str, bytes]] = deque()  # not written yet
        self._queued_bytes = 0
        self._inflight: deque[tuple[str, bytes]] = deque()  # written, reply not read yet
        self._pub: AbstractConnection | None = None  # the publishing connection, when usable
        self._writing = False  # a write is waiting for the transport (a task finishes it)
        self._reply_timeout: float | None = None
        self.dropped = 0
        self._wake = asyncio.Event()
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[None]] = set()
        self._connected = False
        self._stopping = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        self._stopping = False
        with contextlib.suppress(RedisError, OSError):
            await self._connect()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="broker-read"),
            asyncio.create_task(self._publish_loop(), name="broker-publish"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._drop_pubsub()
        conn, self._pub = self._pub, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    def publish(self, channel: str, data: bytes) -> None:
        self._outbox.append((channel, data))
        self._queued_bytes += len(data)
        while len(self._outbox) > MAX_QUEUED or self._queued_bytes > MAX_QUEUED_BYTES:
            # Oldest first: events are repaired from the log, ephemerals are worthless when late.
            _, old = self._outbox.popleft()
            self._queued_bytes -= len(old)
            self.dropped += 1
        self._write_now()

    def _write_now(self) -> None:
        """Write the queued messages to the publishing connection now, if it can take them."""
        conn = self._pub
        while conn is not None and not self._writing and self._outbox:
            batch: list[tuple[str, bytes]] = []
            size = 0
            while self._outbox and len(batch) < BATCH and size < BATCH_BYTES:
                batch.append(self._outbox.popleft())
                size += len(batch[-1][1])
            self._queued_bytes -= size
            self._inflight.extend(batch)
            self._wake.set()  # the publisher task reads the replies
            packed = conn.pack_commands([("PUBLISH", channel, data) for channel, data in batch])
            # Stepped by hand: on a connected transport that is not paused the write completes in
            # this step (no socket timeout: redis-py then writes and drains without suspending).
            coro = conn.send_packed_command(packed, check_health=False)
            try:
                pending = coro.send(None)
            except StopIteration:
                continue
            except (RedisError, OSError) as exc:
                self._lost(conn, exc)
                return
            self._writing = True
            task = asyncio.get_running_loop().create_task(self._finish_write(conn, resume(coro, pending)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _finish_write(self, conn: AbstractConnection, rest: Any) -> None:
        try:
            await rest
        except (RedisError, OSError) as exc:
            self._lost(conn, exc)
        finally:
            self._writing = False
        self._write_now()

    def _lost(self, conn: AbstractConnection, exc: BaseException) -> None:
        """The publishing connection broke: what it did not confirm goes first in line again."""
        if conn is not self._pub:
            return
        log.warning("redis publisher: %s; %d messages wait for the reconnect", exc, len(self._inflight))
        self._pub = None
        self._outbox.extendleft(reversed(self._inflight))
        self._queued_bytes += sum(len(data) for _, data in self._inflight)
        self._inflight.clear()
        self._wake.set()
        task = asyncio.get_running_loop().create_task(conn.disconnect(nowait=True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def subscribe(self, channel: str) -> None:
        if channel in self.channels:
            return
        self.channels.add(channel)
        if self._pubsub is not None and self._connected:
            try:
                await self._pubsub.subscribe(channel)
            except (RedisError, OSError):
                self._connected = False  # the read loop notices and reconnects with every channel

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        if self._pubsub is not None and self._connected:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def _connect(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            if self.channels:
                await pubsub.subscribe(*self.channels)
            else:
                await pubsub.ping()
        except BaseException:
            await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self._connected = True
        if pubsub.connection is not None:
            # redis-py may reconnect and re-subscribe by itself inside get_message: learn of it too.
            pubsub.connection.register_connect_callback(self._silently_reconnected)

    def _silently_reconnected(self, _connection: Any) -> None:
        log.warning("redis subscriber: reconnected by redis-py")
        if self.on_reconnect is not None:
            asyncio.get_running_loop().call_later(0.05, self._reconnected)

    def _reconnected(self) -> None:
        if self.on_reconnect is not None:
            task = asyncio.ensure_future(self.on_reconnect())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _drop_pubsub(self) -> None:
        self._connected = False
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self._stopping:
            if self._pubsub is None or not self._connected:
                await self._drop_pubsub()
                try:
                    await self._connect()
                except (RedisError, OSError) as exc:
                    log.warning("redis subscriber: reconnect failed (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                delay = 0.1
                log.warning("redis subscriber: connected, %d channels", len(self.channels))
                self._reconnected()
            try:
                message: dict[str, Any] | None = await self._pubsub.get_message(  # type: ignore[union-attr]
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except (RedisError, OSError) as exc:
                log.warning("redis subscriber: connection lost (%s)", exc)
                self._connected = False
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            try:
                self.on_message(channel, message["data"])
            except Exception:
                log.exception("broker message handler failed")

    def _make_publisher(self) -> AbstractConnection:
        """A connection like the pool's, but with no socket timeout on writes: redis-py wraps a
        write with a timeout in a task of its own, which would bring back the hop that writing in
        ``publish`` avoids. Replies are still awaited with the configured timeout."""
        pool = self.redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        self._reply_timeout = kwargs.get("socket_timeout")
        kwargs["socket_timeout"] = None
        conn: AbstractConnection = pool.connection_class(**kwargs)
        return conn

    async def _publish_loop(self) -> None:
        """Connect the publishing connection (again, with backoff) and read its replies."""
        delay = 0.1
        while not self._stopping:
            conn = self._pub
            if conn is None:
                conn = self._make_publisher()
                try:
                    await conn.connect()  # type: ignore[no-untyped-call]
                except (RedisError, OSError) as exc:
                    with contextlib.suppress(Exception):
                        await conn.disconnect(nowait=True)
                    if self._outbox:
                        log.warning(
                            "redis publisher: %s; retrying %d messages in %.1fs",
                            exc,
                            len(self._outbox),
                            delay,
                        )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                self._pub = conn
                self._write_now()
                continue
            if not self._inflight:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await conn.read_response(timeout=self._reply_timeout)
            except ResponseError as exc:  # Redis refused that one PUBLISH: it is not retried
                log.warning("redis publisher: %s", exc)
            except (RedisError, OSError) as exc:
                self._lost(conn, exc)
                continue
            if conn is self._pub and self._inflight:
                self._inflight.popleft()
                delay = 0.1
