"""Every broker backend through the same test bodies: memory, and the real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from channels.broker import MemoryBroker
from channels.broker.redis import RedisBroker
from tests.support import services
from tests.support.ownredis import OwnRedis

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["memory", "redis"])
async def make_broker(request):
    made = []
    clients = []

    async def make(on_message, on_reconnect=None):
        if request.param == "memory":
            broker = MemoryBroker(on_message, on_reconnect)
        else:
            services.require_redis()
            redis = Redis.from_url(services.redis_url())
            clients.append(redis)
            broker = RedisBroker(redis, on_message, on_reconnect)
        await broker.start()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.stop()
    for redis in clients:
        await redis.aclose()


async def wait_for(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)


async def test_publish_reaches_subscribers_in_order(make_broker):
    got = []
    broker = await make_broker(lambda channel, data: got.append((channel, bytes(data))))
    channel = f"cbtest:{uuid.uuid4().hex}:board"
    await broker.subscribe(channel)
    await asyncio.sleep(0.05)
    for i in range(50):
        broker.publish(channel, str(i).encode())
    await wait_for(lambda: len(got) == 50)
    assert [int(d) for _, d in got] == list(range(50))
    assert {c for c, _ in got} == {channel}


async def test_unsubscribed_channels_are_silent(make_broker):
    got = []
    broker = await make_broker(lambda channel, data: got.append(data))
    channel = f"cbtest:{uuid.uuid4().hex}:board"
    await broker.subscribe(channel)
    await broker.unsubscribe(channel)
    await asyncio.sleep(0.05)
    broker.publish(channel, b"x")
    broker.publish(channel + "-other", b"y")
    await asyncio.sleep(0.2)
    assert got == []


async def test_redis_broker_survives_a_restart_and_says_so(tmp_path):
    own = OwnRedis(tmp_path)
    own.start()
    got, reconnects = [], []

    async def on_reconnect():
        reconnects.append(1)

    redis = Redis.from_url(own.url)
    broker = RedisBroker(redis, lambda channel, data: got.append(bytes(data)), on_reconnect)
    await broker.start()
    channel = f"cbtest:{uuid.uuid4().hex}:board"
    await broker.subscribe(channel)
    try:
        own.stop()
        # Kept and retried by the publisher; pub/sub itself is at most once (it may land before the
        # subscriber is back), which is why the hub repairs events from the log on reconnect.
        broker.publish(channel, b"queued while down")
        await asyncio.sleep(0.5)
        own.start()
        await wait_for(lambda: reconnects, timeout=10)
        await wait_for(lambda: not broker._outbox, timeout=10)
        broker.publish(channel, b"after")
        await wait_for(lambda: b"after" in got, timeout=10)
    finally:
        await broker.stop()
        await redis.aclose()
        own.stop()


async def test_redis_publish_is_on_the_wire_before_publish_returns():
    services.require_redis()
    redis = Redis.from_url(services.redis_url())
    got = []
    broker = RedisBroker(redis, lambda channel, data: got.append(bytes(data)))
    await broker.start()
    channel = f"cbtest:{uuid.uuid4().hex}:board"
    try:
        await broker.subscribe(channel)
        await wait_for(lambda: broker._pub is not None)
        broker.publish(channel, b"now")
        assert not broker._outbox  # written to the transport: no task in between
        assert len(broker._inflight) == 1
        await wait_for(lambda: got == [b"now"])
        await wait_for(lambda: not broker._inflight)  # its reply was read
    finally:
        await broker.stop()
        await redis.aclose()


async def test_redis_messages_written_to_a_dead_connection_go_again_first(tmp_path):
    own = OwnRedis(tmp_path)
    own.start()
    redis = Redis.from_url(own.url)
    got, reconnects = [], []

    async def on_reconnect():
        reconnects.append(1)

    broker = RedisBroker(redis, lambda channel, data: got.append(bytes(data)), on_reconnect)
    await broker.start()
    channel = f"cbtest:{uuid.uuid4().hex}:board"
    try:
        await broker.subscribe(channel)
        await wait_for(lambda: broker._pub is not None)
        own.stop()
        for i in range(3):
            broker.publish(channel, str(i).encode())
        own.start()
        await wait_for(lambda: reconnects, timeout=10)
        await wait_for(lambda: not broker._outbox and not broker._inflight, timeout=15)
        broker.publish(channel, b"after")
        await wait_for(lambda: b"after" in got, timeout=10)
        # Whatever of 0..2 arrived (pub/sub is at most once while the subscriber reconnects)
        # arrived before "after" and in order.
        assert got == [*sorted(got[:-1]), b"after"]
    finally:
        await broker.stop()
        await redis.aclose()
        own.stop()
