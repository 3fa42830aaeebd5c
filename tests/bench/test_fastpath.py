"""channels/fastpath.py against the pinned uvicorn: frames written straight to transports."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from channels import fastpath
from tests.support.live import free_port


def test_frame_bytes_is_a_valid_server_frame_and_cached() -> None:
    for size in (0, 125, 126, 65535, 65536):
        text = "é" * (size // 2) + "x" * (size % 2)
        data = fastpath.frame_bytes(text)
        reader = StreamReader()
        reader.feed_data(data)
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frame = done.value
        assert frame.opcode is Opcode.TEXT
        assert frame.fin
        assert frame.data.decode() == text
    text = "same object"
    assert fastpath.frame_bytes(text) is fastpath.frame_bytes(text)


class App:
    """Accepts, writes through the fast path and through ASGI, records what write_text answered."""

    def __init__(self) -> None:
        self.results: list[int] = []
        self.done = asyncio.Event()
        self.mode = "order"
        self.dropped_handshake = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        raw = scope["extensions"][fastpath.EXTENSION]
        self.results.append(fastpath.write_text(raw, "before accept", 1 << 20))
        await send({"type": "websocket.accept"})
        self.dropped_handshake = raw.request is None and raw.response is None
        if self.mode == "order":
            for i in range(50):
                self.results.append(fastpath.write_text(raw, f"fast {i}", 1 << 20))
            await send({"type": "websocket.send", "text": "asgi"})
            self.results.append(fastpath.write_text(raw, "fast after asgi", 1 << 20))
            await send({"type": "websocket.close", "code": 1012})
            self.results.append(fastpath.write_text(raw, "after close", 1 << 20))
        else:  # a reader that stopped reading: the write buffer passes the bound
            big = "y" * 60_000
            for _ in range(2000):
                result = fastpath.write_text(raw, big, 256 * 1024)
                self.results.append(result)
                if result != fastpath.WROTE:
                    break
                await asyncio.sleep(0)
            raw.transport.abort()
        self.done.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def serve(app: App) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=fastpath.IMPORT_PATH,
        log_level="warning",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    return server, task, port


@pytest.mark.timeout(30)
async def test_fast_frames_keep_order_with_asgi_sends_and_stop_at_close() -> None:
    app = App()
    server, task, port = await serve(app)
    try:
        got = []
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    got.append(await ws.recv())
            assert ws.close_code == 1012
        assert got == [f"fast {i}" for i in range(50)] + ["asgi", "fast after asgi"]
        assert app.results[0] == fastpath.FALLBACK  # before the handshake: ASGI's job
        assert app.results[1:-1] == [fastpath.WROTE] * 51
        assert app.results[-1] == fastpath.FALLBACK  # after the close frame: never a data frame
        assert app.dropped_handshake
    finally:
        server.should_exit = True
        await task


@pytest.mark.timeout(30)
async def test_a_reader_that_stops_reading_is_reported_over_the_bound() -> None:
    app = App()
    app.mode = "slow"
    server, task, port = await serve(app)
    try:
        async with connect(f"ws://127.0.0.1:{port}/", max_queue=1, close_timeout=1) as ws:
            await ws.recv()  # then read nothing more
            await asyncio.wait_for(app.done.wait(), 20)
        assert app.results[-1] == fastpath.OVER
        assert app.results.count(fastpath.WROTE) > 1
    finally:
        server.should_exit = True
        await task


def test_serve_uses_the_fast_path_protocol_for_ws_impl_fastpath(monkeypatch: pytest.MonkeyPatch) -> None:
    from server import serving

    seen: dict[str, Any] = {}
    monkeypatch.setattr(serving.uvicorn, "run", lambda *a, **kw: seen.update(kw))
    serving.run(host="127.0.0.1", port=1, workers=1, ws_impl="fastpath", log_level="WARNING")
    assert seen["ws"] == fastpath.IMPORT_PATH
    assert seen["ws_per_message_deflate"] is False
    serving.run(host="127.0.0.1", port=1, workers=1, ws_impl="wsproto", log_level="WARNING")
    assert seen["ws"] == "wsproto"


class _Transport:
    def __init__(self, buffered: int = 0) -> None:
        self.data: list[bytes] = []
        self.buffered = buffered

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.data.append(data)


class _Protocol:
    """The attributes of uvicorn's protocol that write_text reads."""

    def __init__(self, transport: _Transport, *, open_: bool = True) -> None:
        self.transport = transport
        self.handshake_complete = open_
        self.close_sent = False
        self.initial_response = None


async def test_connection_writes_pushes_through_the_fast_path() -> None:
    from channels.connection import Connection

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    transport = _Transport()
    conn = Connection(send, 1024, _Protocol(transport))
    conn.send_text("one")
    conn.send_text("two")
    assert sent == []
    assert transport.data == [fastpath.frame_bytes("one"), fastpath.frame_bytes("two")]

    # Not open for data frames: the ordinary ASGI send takes it.
    conn = Connection(send, 1024, _Protocol(_Transport(), open_=False))
    conn.send_text("three")
    assert sent == [{"type": "websocket.send", "text": "three"}]

    # A reader whose transport buffer is over the bound is closed with 1013.
    sent.clear()
    conn = Connection(send, 1024, _Protocol(_Transport(buffered=4096)))
    conn.send_text("four")
    assert conn.closed
    assert conn.close_code == 1013
    assert sent[-1]["type"] == "websocket.close"
