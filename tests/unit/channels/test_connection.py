"""The synchronous write path: one step when the transport takes the frame, bounded backlog when not."""

from __future__ import annotations

import asyncio

import pytest

from channels.connection import Connection

pytestmark = pytest.mark.timeout(10)


class FakeTransport:
    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.written: list[dict] = []

    async def send(self, message: dict) -> None:
        await self.writable.wait()
        self.written.append(message)


async def test_writes_complete_without_a_task_while_writable():
    t = FakeTransport()
    conn = Connection(t.send, limit=100)
    for i in range(3):
        conn.send_text(str(i))
    assert [m["text"] for m in t.written] == ["0", "1", "2"]  # synchronously, in order


async def test_a_paused_transport_keeps_order_then_drains():
    t = FakeTransport()
    conn = Connection(t.send, limit=100)
    t.writable.clear()
    for i in range(5):
        conn.send_text(str(i))
    assert t.written == []
    t.writable.set()
    await asyncio.sleep(0.01)
    assert [m["text"] for m in t.written] == ["0", "1", "2", "3", "4"]
    conn.send_text("5")
    assert t.written[-1]["text"] == "5"


async def test_a_reader_that_never_drains_is_closed_with_1013_and_its_backlog_dropped():
    t = FakeTransport()
    conn = Connection(t.send, limit=1000)
    t.writable.clear()
    for _ in range(50):
        conn.send_text("x" * 100)
    assert conn.closed
    assert conn.close_code == 1013
    assert conn.backlog_bytes == 0
    t.writable.set()
    await asyncio.sleep(0.01)
    assert t.written[-1] == {"type": "websocket.close", "code": 1013}
    assert len(t.written) == 2  # the frame in flight, then the close
