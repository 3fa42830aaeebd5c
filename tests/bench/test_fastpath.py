"""channels/fastpath.py against the pinned uvicorn: frames written straight to transports."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from channels import fastpath
from tests.support.live import free_port
from tests.unit.channels.fakes import RecordingTransport


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


def _parse_frames(data: bytes) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


def test_write_texts_is_one_write_of_valid_frames_in_order() -> None:
    texts = ["é" * (size // 2) + "x" * (size % 2) for size in (0, 1, 125, 126, 65535, 65536, 70000)]
    raw = _Protocol(RecordingTransport())
    assert fastpath.write_texts(raw, texts, 1 << 20) == fastpath.WROTE
    assert len(raw.transport.data) == 1
    assert raw.transport.data[0] == b"".join(fastpath.frame_bytes(t) for t in texts)
    frames = _parse_frames(raw.transport.data[0])
    assert [f.data.decode() for f in frames] == texts
    assert all(f.opcode is Opcode.TEXT and f.fin and not f.rsv1 for f in frames)
    assert (
        fastpath.write_texts(_Protocol(RecordingTransport(), open_=False), texts, 1 << 20)
        == fastpath.FALLBACK
    )
    assert fastpath.write_texts(_Protocol(RecordingTransport(buffered=4096)), texts, 1024) == fastpath.OVER


async def test_connection_send_texts_one_write_on_the_fast_path_each_in_order_through_asgi() -> None:
    from channels.connection import Connection

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = _Protocol(RecordingTransport())
    Connection(send, 1024, raw).send_texts(["a", "b", "c"])
    assert raw.transport.data == [b"".join(fastpath.frame_bytes(t) for t in "abc")]
    Connection(send, 1024).send_texts(["a", "b", "c"])
    assert [m["text"] for m in sent] == ["a", "b", "c"]

    raw = _Protocol(RecordingTransport(buffered=4096))
    conn = Connection(send, 1024, raw)
    conn.send_texts(["a", "b"])
    assert conn.closed
    assert conn.close_code == 1013
    assert raw.closed_with == [1013]
    assert raw.transport.data == []


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


class _Protocol:
    """The attributes of uvicorn's protocol that write_text reads, and close_with."""

    def __init__(self, transport: RecordingTransport, *, open_: bool = True) -> None:
        self.transport = transport
        self.handshake_complete = open_
        self.close_sent = False
        self.initial_response = None
        self.closed_with: list[int] = []

    def close_with(self, code: int) -> None:
        self.closed_with.append(code)
        self.close_sent = True


async def test_connection_writes_pushes_and_closes_through_the_protocol() -> None:
    from channels.connection import Connection

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    transport = RecordingTransport()
    conn = Connection(send, 1024, _Protocol(transport))
    conn.send_text("one")
    conn.send_text("two")
    assert transport.data == [fastpath.frame_bytes("one"), fastpath.frame_bytes("two")]

    # Not open for data frames (a close frame went out, or the transport is closing): dropped.
    raw = _Protocol(RecordingTransport(), open_=False)
    conn = Connection(send, 1024, raw)
    conn.send_text("three")
    assert raw.transport.data == []

    # A reader whose transport buffer is over the bound is closed with 1013, by the protocol.
    raw = _Protocol(RecordingTransport(buffered=4096))
    conn = Connection(send, 1024, raw)
    conn.send_text("four")
    conn.send_text("five")
    assert conn.closed
    assert conn.close_code == 1013
    assert raw.closed_with == [1013]
    assert raw.transport.data == []
    conn.close(1000)  # idempotent
    assert raw.closed_with == [1013]
    assert sent == []  # ASGI send is never used once the fast path has the socket


# ---------------------------------------------------------------------------- hand_off


class Recorder:
    """A fastpath.Receiver that echoes every message through write_text."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.got: list[str | bytes] = []
        self.closed = 0
        self.event = asyncio.Event()

    def frame_received(self, data: str | bytes) -> None:
        self.got.append(data)
        fastpath.write_text(self.raw, f"echo {data!r}", 1 << 20)
        if data == "close me":
            self.raw.close_with(4001)

    def connection_closed(self) -> None:
        self.closed += 1
        self.event.set()


class HandOffApp:
    def __init__(self) -> None:
        self.raw: Any = None
        self.receiver: Recorder | None = None
        self.handed = False
        self.returned = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await App()(scope, receive, send)
            return
        await receive()
        await send({"type": "websocket.accept"})
        self.raw = scope["extensions"][fastpath.EXTENSION]
        self.receiver = Recorder(self.raw)
        self.handed = self.raw.hand_off(self.receiver)
        self.returned.set()


@pytest.mark.timeout(30)
async def test_hand_off_ends_the_app_task_and_gives_each_message_to_the_receiver() -> None:
    from websockets.protocol import Protocol

    app = HandOffApp()
    server, task, port = await serve(app)  # type: ignore[arg-type]
    try:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await asyncio.wait_for(app.returned.wait(), 10)
            assert app.handed
            raw = app.raw
            for _ in range(100):  # the app's task ends on the next loop turns
                if not server.server_state.tasks:
                    break
                await asyncio.sleep(0.01)
            assert not server.server_state.tasks  # no task, no coroutine chain per socket
            assert raw in server.server_state.connections  # ... but the connection is open
            assert not fastpath.HANDSHAKE_ONLY & set(vars(raw))  # the ASGI scope among them
            assert len(vars(raw)) <= 21  # a small dict (see FastPathProtocol._compact)
            assert not isinstance(raw.queue, asyncio.Queue)
            assert not isinstance(raw.writable, asyncio.Event)
            # websockets' parser was restarted after the handshake: the request is not held.
            assert raw.conn.parser.gi_code is Protocol.parse.__code__
            await ws.send("a")
            await ws.send(b"b")
            await ws.send("é" * 40_000)  # bigger than one read: the frame arrives in pieces
            assert await ws.recv() == "echo 'a'"
            assert await ws.recv() == "echo b'b'"
            assert await ws.recv() == f"echo {'é' * 40_000!r}"
            await ws.send("close me")
            assert await ws.recv() == "echo 'close me'"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001
        assert app.receiver is not None
        assert app.receiver.got == ["a", b"b", "é" * 40_000, "close me"]
        assert app.receiver.closed == 1  # once, however many ways uvicorn reports the end
        for _ in range(200):
            if raw not in server.server_state.connections:
                break
            await asyncio.sleep(0.01)
        assert raw not in server.server_state.connections
    finally:
        server.should_exit = True
        await task


@pytest.mark.timeout(30)
async def test_after_hand_off_the_peer_closing_and_shutdown_reach_the_receiver() -> None:
    app = HandOffApp()
    server, task, port = await serve(app)  # type: ignore[arg-type]
    try:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await asyncio.wait_for(app.returned.wait(), 10)
            await ws.send("x")
            assert await ws.recv() == "echo 'x'"
        assert app.receiver is not None
        await asyncio.wait_for(app.receiver.event.wait(), 10)
        assert app.receiver.closed == 1

        app.returned.clear()
        ws = await connect(f"ws://127.0.0.1:{port}/")
        await asyncio.wait_for(app.returned.wait(), 10)
        second = app.receiver
        server.should_exit = True
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1012
        assert second.closed == 1
    finally:
        server.should_exit = True
        await task


@pytest.mark.timeout(60)
async def test_a_close_the_peer_never_reads_aborts_the_connection_after_the_close_timeout() -> None:
    """transport.close() would wait for a buffer that never drains; close_with's timer aborts."""
    app = HandOffApp()
    server, task, port = await serve(app)  # type: ignore[arg-type]
    try:
        async with connect(f"ws://127.0.0.1:{port}/", max_queue=1, close_timeout=1) as ws:
            await asyncio.wait_for(app.returned.wait(), 10)
            raw = app.raw
            raw.close_timeout = 0.5
            big = "y" * 60_000
            for _ in range(2000):
                if fastpath.write_text(raw, big, 256 * 1024) != fastpath.WROTE:
                    break
                await asyncio.sleep(0)
            assert raw.transport.get_write_buffer_size() > 0
            raw.close_with(1013)
            for _ in range(500):
                if raw not in server.server_state.connections:
                    break
                await asyncio.sleep(0.01)
            assert raw not in server.server_state.connections
            assert app.receiver is not None
            assert app.receiver.closed == 1
            del ws
    finally:
        server.should_exit = True
        await task


# ---------------------------------------------------------------------------- uvicorn internals


def test_the_uvicorn_internals_the_fast_path_relies_on_are_those_of_the_pinned_version() -> None:
    """FastPathProtocol copies or mirrors parts of uvicorn 0.54.0's WebSocketsSansIOProtocol and
    stands in for its ``queue`` and ``writable``. If uvicorn changes them this fails: compare the
    new code with channels/fastpath.py, update it, then the fingerprints here."""
    import hashlib
    import inspect

    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol as Base

    assert uvicorn.__version__ == "0.54.0"
    source = inspect.getsource(Base)

    def fingerprint(name: str) -> str:
        return hashlib.sha256(inspect.getsource(getattr(Base, name)).encode()).hexdigest()[:16]

    # Copied with one change (run_asgi, send_receive_event_to_app); mirrored (send's close branch).
    assert {
        name: fingerprint(name) for name in ("run_asgi", "send_receive_event_to_app", "send")
    } == FINGERPRINTS
    # _ToReceiver and _AlwaysWritable offer exactly what uvicorn calls on the objects they replace.
    assert set(re.findall(r"self\.queue\.(\w+)", source)) == {"put_nowait", "get", "empty"}
    assert set(re.findall(r"self\.writable\.(\w+)", source)) == {"set", "clear", "wait"}
    # After the hand-off uvicorn reads none of the attributes _compact drops (only the handshake's
    # log lines, handle_connect and the start of run_asgi do).
    after_handshake = "".join(
        inspect.getsource(getattr(Base, name))
        for name in (
            "connection_lost",
            "eof_received",
            "pause_writing",
            "resume_writing",
            "shutdown",
            "data_received",
            "handle_events",
            "handle_cont",
            "handle_text",
            "handle_bytes",
            "handle_ping",
            "handle_pong",
            "start_keepalive",
            "stop_keepalive",
            "schedule_ping",
            "send_keepalive_ping",
            "keepalive_timeout",
            "handle_close",
            "handle_parser_exception",
            "on_task_complete",
        )
    )
    ours = fastpath.FastPathProtocol
    for method in (ours.hand_off, ours.send_receive_event_to_app, ours.close_with, ours._close_timed_out):
        after_handshake += inspect.getsource(method)
    # run_asgi after its one call of the app
    after_handshake += inspect.getsource(ours.run_asgi).split("self.receive, self.send)", 1)[1]
    read_later = set(re.findall(r"self\.(\w+)", after_handshake))
    assert not fastpath.HANDSHAKE_ONLY & read_later
    # The attributes write_text, close_with and hand_off read or write.
    loop = asyncio.new_event_loop()
    protocol = _real_protocol(loop)
    loop.close()
    for name in (
        "transport",
        "handshake_complete",
        "close_sent",
        "initial_response",
        "disconnected",
        "read_paused",
        "close_timer",
        "close_timeout",
        "conn",
        "loop",
        "tasks",
        "frames",
        "curr_msg_data_type",
        "logger",
    ):
        assert hasattr(protocol, name), name


FINGERPRINTS = {
    "run_asgi": "662375aa38d9044c",
    "send_receive_event_to_app": "a2b10de91477dc1d",
    "send": "d4919ed760ce9f7b",
}


def _real_protocol(loop: asyncio.AbstractEventLoop) -> Any:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    config = Config(app, ws=fastpath.IMPORT_PATH)
    config.load()
    return fastpath.FastPathProtocol(config, ServerState(), {}, _loop=loop)
