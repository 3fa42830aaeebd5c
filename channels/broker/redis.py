"""Redis pub/sub broker: one subscriber connection per process, one SUBSCRIBE per channel.

Publishing goes through one process-wide task that drains a bounded queue in order with
pipelines, so ``publish`` never blocks the caller and two commits on one board reach Redis in
commit order. While Redis is unreachable the publisher keeps retrying (the oldest messages are
dropped past the bound) and the subscriber reconnects with backoff, re-subscribes every channel
and then calls ``on_reconnect`` so the hub can fetch what it missed from the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from channels.broker.base import Broker, MessageHandler, ReconnectHandler

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
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._queued_bytes = 0
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

    def publish(self, channel: str, data: bytes) -> None:
        self._outbox.append((channel, data))
        self._queued_bytes += len(data)
        while len(self._outbox) > MAX_QUEUED or self._queued_bytes > MAX_QUEUED_BYTES:
            # Oldest first: events are repaired from the log, ephemerals are worthless when late.
            _, old = self._outbox.popleft()
            self._queued_bytes -= len(old)
            self.dropped += 1
        self._wake.set()

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
            await pubsub.aclose()  # type: ignore[no-untyped-call]
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
                await pubsub.aclose()  # type: ignore[no-untyped-call]

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

    async def _publish_loop(self) -> None:
        delay = 0.1
        while not self._stopping:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[tuple[str, bytes]] = []
            size = 0
            while self._outbox and len(batch) < BATCH and size < BATCH_BYTES:
                batch.append(self._outbox.popleft())
                size += len(batch[-1][1])
            self._queued_bytes -= size
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
                delay = 0.1
            except (RedisError, OSError) as exc:
                log.warning("redis publisher: %s; retrying %d messages in %.1fs", exc, len(batch), delay)
                self._outbox.extendleft(reversed(batch))
                self._queued_bytes += size
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
