"""A Phoenix Channels V2 client built for load: thousands of sockets in one process.

Each socket is one small :class:`asyncio.Protocol` driving a sans-io
:class:`websockets.client.ClientProtocol` (handshake, framing, masking, close): no task, queue or
stream per socket, so the client stays cheaper per delivery than the server it measures. Frames
are decoded with msgspec; pushes that carry a ``seq`` are recorded per socket and topic by a
:class:`~server.loadtest.tracker.Subscription` (receipt time, loss, duplicates).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from server.loadtest.tracker import Subscription, Tracker

PHX_VSN = "2.0.0"


class PhxFrame(msgspec.Struct, array_like=True):
    """``[join_ref, ref, topic, event, payload]`` with the payload left encoded."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: msgspec.Raw


class Reply(msgspec.Struct):
    status: str
    response: dict[str, Any] = msgspec.field(default_factory=dict)


class _Stamp(msgspec.Struct):
    """The two envelope fields the client measures; the rest of the payload is skipped."""

    seq: int = -1
    at: str = ""


class _Pushed(msgspec.Struct, array_like=True):
    """A frame decoded for the common case, a pushed event: the payload's stamp only (a reply or
    any other payload decodes with ``seq`` -1, and goes the general way)."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: _Stamp


class PhxError(Exception):
    """A join or push answered with ``status: error`` (``reason`` from the reply)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_frame_decoder = msgspec.json.Decoder(PhxFrame)
_reply_decoder = msgspec.json.Decoder(Reply)
_stamp_decoder = msgspec.json.Decoder(_Stamp)
_pushed_decoder = msgspec.json.Decoder(_Pushed)
_encode = msgspec.json.Encoder().encode
_UNSEQUENCED = frozenset({"presence_state", "presence_diff", "ephemeral", "phx_close", "phx_error"})


class PhxPool:
    """Many Phoenix sockets against one server; shared counters, decoders and reply table.

    Args:
        url: The server's base URL (``http://host:port`` or ``ws://host:port``); the socket path
            ``/socket/websocket`` is added unless the URL already ends with ``/websocket``.
        tracker: Where pushes with a ``seq`` are recorded (loss, duplicates, latency).
        on_push: Optional hook for every other push ``(socket, topic, event, payload)``.
    """

    def __init__(
        self,
        url: str,
        tracker: Tracker | None = None,
        on_push: Callable[[PhxSocket, str, str, bytes], None] | None = None,
    ) -> None:
        parts = urlsplit(url)
        scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
        path = parts.path.rstrip("/")
        if not path.endswith("/websocket"):
            path += "/socket/websocket"
        self.base = f"{scheme}://{parts.netloc}{path}"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if scheme == "wss" else 80)
        self.ssl = scheme == "wss"
        self.tracker = tracker or Tracker()
        self.on_push = on_push
        self.pending: dict[str, asyncio.Future[Reply]] = {}
        self._refs = itertools.count(1)
        self.sockets: list[PhxSocket] = []
        self.opened = 0
        self.failed = 0
        self.closed = 0
        self.errors: Counter[str] = Counter()
        self.close_codes: Counter[int] = Counter()
        self.frames_in = 0
        self.fast_frames = True
        self.other_pushes: Counter[str] = Counter()

    def next_ref(self) -> str:
        return str(next(self._refs))

    async def connect(
        self, token: str | None, *, timeout: float = 10.0, subprotocol_token: bool = False
    ) -> PhxSocket:
        """Open one socket (``vsn=2.0.0&token=…``); raises on refusal, counted in ``errors``."""
        query: dict[str, str] = {"vsn": PHX_VSN}
        subprotocols = None
        if token and not subprotocol_token:
            query["token"] = token
        elif token:
            import base64

            b64 = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
            subprotocols = ["phoenix", f"base64url.bearer.phx.{b64}"]
        uri = parse_uri(f"{self.base}?{urlencode(query)}")
        loop = asyncio.get_running_loop()
        sock = PhxSocket(self, uri, subprotocols)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: sock, self.host, self.port, ssl=self.ssl or None), timeout
            )
            await asyncio.wait_for(sock.opening, timeout)
        except Exception as exc:
            self.failed += 1
            self.errors[_kind(exc)] += 1
            sock.abort()
            raise
        self.opened += 1
        self.sockets.append(sock)
        return sock

    def heartbeat_all(self) -> None:
        """One Phoenix heartbeat on every open socket (replies are counted, not awaited)."""
        for sock in self.sockets:
            if not sock.is_closed:
                sock.push("phoenix", "heartbeat", b"{}")

    def close_all(self) -> None:
        for sock in self.sockets:
            sock.close()

    @property
    def open_count(self) -> int:
        return sum(1 for s in self.sockets if not s.is_closed)


def _kind(exc: BaseException) -> str:
    if isinstance(exc, InvalidHandshake):
        text = str(exc)
        if "HTTP" in text:
            return "ws_refused:" + "".join(ch for ch in text.split("HTTP", 1)[1] if ch.isdigit())[:3]
        return "ws_handshake"
    if isinstance(exc, TimeoutError):
        return "ws_timeout"
    if isinstance(exc, OSError):
        return f"ws_oserror:{exc.errno}"
    return "ws_" + type(exc).__name__


class PhxSocket(asyncio.Protocol):
    """One Phoenix socket: a sans-io websockets protocol on an asyncio transport."""

    __slots__ = ("buf", "closed", "frag", "opening", "pool", "proto", "subs", "transport")

    def __init__(self, pool: PhxPool, uri: Any, subprotocols: list[str] | None) -> None:
        self.pool = pool
        self.proto = ClientProtocol(uri, subprotocols=subprotocols, max_size=64 * 1024 * 1024)  # type: ignore[arg-type]
        self.transport: asyncio.Transport | None = None
        self.opening: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.subs: dict[str, Subscription] = {}
        self.closed = False
        self.frag: bytearray | None = None
        self.buf: bytes | None = None  # not None: frames are parsed by _fast (after the handshake)

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proto.send_request(self.proto.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.buf is not None:
            self._fast(self.buf + data if self.buf else data)
            return
        self._slow(data)

    def _fast(self, buf: bytes) -> None:
        """Unfragmented, unmasked server text frames parsed here; anything else goes to websockets.

        Only once the handshake is done and websockets' own reader holds no partial frame, so the
        hand-over always happens on a frame boundary. It halves the client's Python time per frame.
        """
        i, n = 0, len(buf)
        now = time.time()
        while n - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            length = b1 & 0x7F
            if length == 126:
                if n - i < 4:
                    break
                length = int.from_bytes(buf[i + 2 : i + 4], "big")
                start = i + 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(buf[i + 2 : i + 10], "big")
                start = i + 10
            else:
                start = i + 2
            if b0 != 0x81 or b1 & 0x80:  # not a final unmasked text frame: websockets takes over
                self.buf = None
                self._slow(buf[i:])
                return
            end = start + length
            if end > n:
                break
            self._on_text(buf[start:end], now)
            i = end
        self.buf = buf[i:]

    def _slow(self, data: bytes) -> None:
        proto = self.proto
        proto.receive_data(data)
        events = proto.events_received()
        if events:
            now = time.time()
            for event in events:
                if isinstance(event, Frame):
                    if event.opcode is Opcode.TEXT and event.fin:
                        self._on_text(bytes(event.data), now)
                    elif event.opcode is Opcode.TEXT:  # the sans-io layer does not reassemble
                        self.frag = bytearray(event.data)
                    elif event.opcode is Opcode.CONT and self.frag is not None:
                        self.frag += event.data
                        if event.fin:
                            self._on_text(bytes(self.frag), now)
                            self.frag = None
                    elif event.opcode is Opcode.CLOSE and proto.close_rcvd is not None:
                        self.pool.close_codes[proto.close_rcvd.code] += 1
                elif isinstance(event, Response) and not self.opening.done():
                    if proto.state is State.OPEN:
                        self.opening.set_result(None)
                    else:
                        self.opening.set_exception(proto.handshake_exc or InvalidHandshake("refused"))
        self._flush()
        if proto.close_expected() or proto.state is State.CLOSED:
            self.abort()
        elif proto.state is State.OPEN and not proto.reader.buffer and self.pool.fast_frames:
            self.buf = b""

    def eof_received(self) -> bool | None:
        if self.buf:
            self._slow(self.buf)
        self.buf = None
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.pool.closed += 1
        if not self.opening.done():
            self.opening.set_exception(exc or ConnectionError("closed during handshake"))

    # --- Phoenix
    def _on_text(self, data: bytes, now: float) -> None:
        pool = self.pool
        pool.frames_in += 1
        try:  # one decode for a pushed event, the frame most received by far
            pushed = _pushed_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            stamp = pushed.payload
            if stamp.seq >= 0 and pushed.join_ref is None and pushed.event not in _UNSEQUENCED:
                sub = self.subs.get(pushed.topic)
                if sub is not None:
                    pool.tracker.record(sub, stamp.seq, stamp.at, now)
                    return
        try:
            frame = _frame_decoder.decode(data)
        except msgspec.DecodeError:
            pool.errors["bad_frame"] += 1
            return
        if frame.event == "phx_reply":
            sub = self.subs.get(frame.topic)
            if sub is not None and sub.base is None and frame.ref == sub.join_ref:
                # Set the base before the frames that follow in this same read (the replay).
                reply = _reply_decoder.decode(frame.payload)
                if reply.status == "ok":
                    sub.start(int(reply.response.get("seq", 0)))
            fut = pool.pending.pop(frame.ref, None) if frame.ref else None
            if fut is not None:
                if not fut.done():
                    fut.set_result(_reply_decoder.decode(frame.payload))
            elif b'"error"' in bytes(frame.payload):  # a push we did not wait on was refused
                reason = _reply_decoder.decode(frame.payload).response.get("reason", "?")
                pool.errors[f"push_refused:{reason}"] += 1
            return
        sub = self.subs.get(frame.topic)
        if sub is not None and frame.join_ref is None and frame.event not in _UNSEQUENCED:
            stamp = _stamp_decoder.decode(frame.payload)
            if stamp.seq >= 0:
                pool.tracker.record(sub, stamp.seq, stamp.at, now)
                return
        pool.other_pushes[frame.event] += 1
        if frame.event == "phx_close" or frame.event == "phx_error":
            self.subs.pop(frame.topic, None)
        if pool.on_push is not None:
            pool.on_push(self, frame.topic, frame.event, frame.payload)

    def send_frame(
        self, join_ref: str | None, ref: str | None, topic: str, event: str, payload: bytes
    ) -> None:
        if self.closed or self.proto.state is not State.OPEN:
            return
        self.proto.send_text(
            b"[%s,%s,%s,%s,%s]" % (_encode(join_ref), _encode(ref), _encode(topic), _encode(event), payload)
        )
        self._flush()

    def push(self, topic: str, event: str, payload: bytes) -> str:
        ref = self.pool.next_ref()
        self.send_frame(self.subs[topic].join_ref if topic in self.subs else None, ref, topic, event, payload)
        return ref

    async def call(
        self, topic: str, event: str, payload: Any, *, join_ref: str | None = None, timeout: float = 10.0
    ) -> Reply:
        """Send a frame and wait for its ``phx_reply``."""
        pool = self.pool
        ref = pool.next_ref()
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        pool.pending[ref] = fut
        body = payload if isinstance(payload, bytes) else _encode(payload)
        self.send_frame(join_ref, ref, topic, event, body)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            pool.pending.pop(ref, None)

    async def join(self, topic: str, payload: Any = None, *, timeout: float = 10.0) -> dict[str, Any]:
        """Join ``topic``; returns the ok response (``seq`` starts the seq tracking) or raises PhxError."""
        join_ref = self.pool.next_ref()
        last_seq = (payload or {}).get("last_seq")
        sub = Subscription(join_ref, topic, None if last_seq is None else int(last_seq))
        self.subs[topic] = sub  # before the reply: replayed events follow it in the same read
        try:
            reply = await self.call(topic, "phx_join", payload or {}, join_ref=join_ref, timeout=timeout)
        except BaseException:
            self.subs.pop(topic, None)
            raise
        if reply.status != "ok":
            self.subs.pop(topic, None)
            raise PhxError(str(reply.response.get("reason", reply.status)))
        sub.start(int(reply.response.get("seq", 0)))
        return reply.response

    async def leave(self, topic: str, *, timeout: float = 10.0) -> None:
        sub = self.subs.pop(topic, None)
        if sub is not None:
            await self.call(topic, "phx_leave", b"{}", join_ref=sub.join_ref, timeout=timeout)

    # --- transport
    def _flush(self) -> None:
        out = self.proto.data_to_send()
        if out and self.transport is not None:
            data = b"".join(out)
            if data:
                self.transport.write(data)
            else:  # websockets signals "half-close" with an empty chunk
                if self.transport.can_write_eof():
                    self.transport.write_eof()

    def close(self) -> None:
        if not self.closed and self.proto.state is State.OPEN:
            self.proto.send_close(1000)
            self._flush()
        elif not self.closed:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def is_closed(self) -> bool:
        return self.closed
