"""The socket fast path: pre-built frames written straight to transports, and no task per socket.

``WS_IMPL=fastpath`` (the default) runs uvicorn with :class:`FastPathProtocol`, uvicorn's sans-io
WebSocket protocol plus two things. Once the handshake has been parsed it puts itself in the ASGI
scope under ``extensions["corkboard.fastpath"]``; Litestar still does the routing, the handshake
and the auth through plain ASGI. Then:

- Writes: the hub's fan-out writes the frames it already built straight to the connection's
  transport through :func:`write_framed` (other frames through :func:`write_text`). The
  per-socket ``await send()`` through Litestar's and uvicorn's send wrappers, the per-socket
  ``str.encode`` and websockets' per-socket framing were about half of the server's CPU per
  delivery (bench/RESULTS.md). Here the frames of a fan-out pass are built once
  (channels/fanout.py; :func:`frame_bytes` remembers the last text it framed for the other
  broadcasts), and each socket costs one buffer-size check and one ``transport.write``. Closes are
  :meth:`FastPathProtocol.close_with`.
- Reads (:meth:`FastPathProtocol.hand_off`): once accepted, the app gives the protocol a
  :class:`Receiver` and returns. The app's task and its coroutine chain through the middleware,
  uvicorn's receive ``asyncio.Queue``, its ``writable`` event, the ASGI scope and the upgrade
  request all go; every later message is handed to the receiver synchronously from
  ``data_received``, and the end of the connection (however uvicorn learns of it) becomes one
  ``connection_closed`` call. That took the RSS of an idle joined socket from 27 KiB to under
  7 KiB (bench/RESULTS.md, "idle").

Safety: a data frame goes out only while the connection is open for data (handshake sent, no
close sent, transport not closing); otherwise :func:`write_text` answers ``FALLBACK`` and nothing
is written. A transport whose write buffer is over the bound answers ``OVER``: the caller closes
that socket with 1013 instead of letting its backlog grow, and a peer that does not read its close
frame either is aborted when the close timeout passes. Server frames are never masked and never
fragmented here; a frame without RSV1 is valid even when permessage-deflate was negotiated (RFC
7692 §6). Before the hand-off, and with the other ``WS_IMPL`` choices, everything is plain ASGI.

This depends on uvicorn internals: the attributes of ``WebSocketsSansIOProtocol`` read here, the
two methods copied with one change (``run_asgi``, ``send_receive_event_to_app``), what uvicorn
calls on ``queue`` and ``writable``, and which attributes it reads after the handshake. uvicorn
is pinned in pyproject.toml and tests/bench/test_fastpath.py checks each of those against the
pinned version (source fingerprints included) and the whole path through a real server.
"""

from __future__ import annotations

import asyncio
import struct
import typing
from collections.abc import Coroutine, Sequence
from typing import Any, Final

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

EXTENSION: Final = "corkboard.fastpath"
IMPORT_PATH: Final = "channels.fastpath:FastPathProtocol"

_FRAME_LOOP: Final = Protocol.parse.__code__
_AT_EOF: Final = StreamReader.at_eof.__code__

WROTE: Final = 0
FALLBACK: Final = 1
OVER: Final = 2


class Receiver(typing.Protocol):
    """What takes a socket over from the ASGI app (:meth:`FastPathProtocol.hand_off`)."""

    def frame_received(self, data: str | bytes) -> None:
        """One whole client message, in order; called from the event loop, must not block."""

    def connection_closed(self) -> None:
        """The connection ended or a close frame was sent; called at least once, maybe more."""


class _ToReceiver:
    """Stands in for uvicorn's per-connection ``asyncio.Queue`` once the socket is handed off.

    uvicorn puts ``websocket.disconnect`` in ``self.queue`` wherever the connection ends (peer's
    close frame, lost connection, parser error, server shutdown, our close): each becomes one call
    to the receiver. Received messages never come here (see ``send_receive_event_to_app``).
    """

    __slots__ = ("receiver",)

    def __init__(self, receiver: Receiver) -> None:
        self.receiver: Receiver | None = receiver

    def put_nowait(self, message: dict[str, Any]) -> None:
        receiver = self.receiver
        if receiver is not None and message["type"] == "websocket.disconnect":
            self.receiver = None
            receiver.connection_closed()

    def empty(self) -> bool:
        return True


class _AlwaysWritable:
    """Stands in for uvicorn's ``writable`` ``asyncio.Event`` once handed off (nothing awaits it then:
    the receiver's side writes with :func:`write_text` and checks the buffer itself). One for all."""

    __slots__ = ()

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass

    def is_set(self) -> bool:
        return True

    async def wait(self) -> bool:
        return True


_ALWAYS_WRITABLE: Final = _AlwaysWritable()


# What uvicorn reads only up to the handshake and the start of run_asgi (tests/bench/test_fastpath.py
# checks that no method used afterwards reads them): dropped at the hand-off.
HANDSHAKE_ONLY: Final = frozenset(
    {
        "app",
        "app_state",
        "asgi_version",
        "config",
        "default_headers",
        "handshake_initiated",
        "request",
        "response",
        "root_path",
        "scheme",
        "scope",
        "server",
    }
)
# Not close_sent or initial_response: write_text reads them for every frame, and an instance
# attribute is found faster than a class one.
_IDLE_DEFAULTS: Final = frozenset(
    {
        "disconnected",
        "close_timer",
        "read_paused",
        "ping_interval",
        "ping_timer",
        "pong_timer",
        "pending_ping_payload",
        "ping_sent_at",
        "last_ping_rtt",
    }
)


class FastPathProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-io WebSocket protocol, exposed to the app through the ASGI scope, that can
    take the socket over from the app once the handshake is done (:meth:`hand_off`)."""

    receiver: Receiver | None = None  # a class default: no per-connection slot until handed off
    # Values every idle handed-off connection has (see _compact): class defaults, so the instance
    # does not need its own entries. Before the hand-off uvicorn's __init__ shadows them all.
    disconnected = False
    close_timer: Any = None
    read_paused = False
    ping_interval: float | None = None
    ping_timer: Any = None
    pong_timer: Any = None
    pending_ping_payload: bytes | None = None
    ping_sent_at = 0.0
    last_ping_rtt = 0.0

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:  # the app task starts on the next loop turn and sees this
            scope["extensions"][EXTENSION] = self

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "request", None) is not None:
            # The parsed upgrade request and our 101 response (two header maps) are not read again
            # once the handshake is sent; dropping them saves memory on every idle socket.
            self.request = self.response = None  # type: ignore[assignment]
            restart_frame_parser(self.conn)

    # ------------------------------------------------------------------ after the handshake
    def hand_off(self, receiver: Receiver) -> bool:
        """From now on give ``receiver`` every message synchronously; the app may then return.

        Called by the app after ``websocket.accept``. The app's task, its coroutine chain through
        the middleware, uvicorn's receive queue, the ``writable`` event and the ASGI scope are all
        dropped: an idle socket is this object, websockets' parser, the transport and the
        receiver. Messages queued before the call are passed on in order. False (nothing changed,
        keep using ASGI) if the connection is not open for data.
        """
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or self.transport.is_closing()
        ):
            return False
        queued = self.queue
        self.queue = _ToReceiver(receiver)  # type: ignore[assignment]
        self.receiver = receiver
        self.writable = _ALWAYS_WRITABLE  # type: ignore[assignment]
        self._compact()
        self.release_reading()
        while not queued.empty():
            message = queued.get_nowait()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                receiver.frame_received(text if text is not None else message.get("bytes") or b"")
            elif message["type"] == "websocket.disconnect":
                self.queue.put_nowait(message)
        return True

    def _compact(self) -> None:
        """Rebuild the instance dict without what the open connection never reads again.

        uvicorn's protocol sets about 37 attributes, past the size where an instance dict is
        shared-key, so each connection has a 64-slot dict (1.6 KiB). Without the handshake-only
        attributes (the ASGI scope among them) and the entries equal to the class defaults above,
        about 15 remain: a 464-byte dict. Attributes are read the same afterwards (the class
        supplies the defaults; writes go to the instance as before).
        """
        cls = type(self)
        self.__dict__ = {
            name: value
            for name, value in vars(self).items()
            if name not in HANDSHAKE_ONLY
            and not (
                name in _IDLE_DEFAULTS
                and type(value) is type(getattr(cls, name))
                and value == getattr(cls, name)
            )
        }

    async def run_asgi(self) -> None:
        """uvicorn 0.54.0's ``run_asgi``, except that the transport stays open when the app returns
        after :meth:`hand_off` (guarded by tests/bench/test_fastpath.py)."""
        failed = False
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            failed = True
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and (failed or self.receiver is None):
            self.transport.close()

    def send_receive_event_to_app(self) -> None:
        """uvicorn's, except that once handed off the message goes to the receiver, not the queue,
        and reading is not paused after each message (the receiver pauses it when it must)."""
        receiver = self.receiver
        if receiver is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past our close frame: discarded, as uvicorn does
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.logger.exception("Invalid UTF-8 sequence received from client.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
            receiver.frame_received(text)
        else:
            receiver.frame_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # Nothing comes in any more; the receiver (which holds this protocol) can go without
        # waiting for the cyclic garbage collector.
        self.receiver = None

    def close_with(self, code: int) -> None:
        """Send a close frame now: what uvicorn's ``send`` does for ``websocket.close`` once open,
        without awaiting ``writable`` (the frame joins the transport's buffer; a reader that does
        not take it is dropped when the close timeout passes, see :meth:`_close_timed_out`)."""
        if self.close_sent or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": ""})
        try:
            self.conn.send_close(code, "")
        except InvalidState:  # websockets already saw the peer's close: nothing to send
            return
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.release_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        # The peer never answered our close frame. A transport.close() would wait for the write
        # buffer to drain, forever for a peer that stopped reading: abort then, close otherwise.
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task for the receiver's work that must await; uvicorn's shutdown waits for it."""
        task = self.loop.create_task(coro)
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)
        return task

    def hold_reading(self) -> None:
        """Stop reading from the peer (the receiver has work in flight); see :meth:`release_reading`."""
        if not self.read_paused and not self.close_sent and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def release_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()


def restart_frame_parser(conn: ServerProtocol) -> bool:
    """Give websockets' parser a fresh generator if it waits between frames; True if it did.

    ``ServerProtocol.parse`` parses the upgrade request into a local variable, then stays
    suspended in the frame loop (``Protocol.parse``) for the connection's life, keeping that
    request and its headers (about 2.5 KiB) alive. A new ``Protocol.parse`` generator behaves the
    same from the next frame on; it is swapped in only when the old one waits in ``at_eof`` for
    the first byte of a frame (nothing half parsed), which is where it is right after the handshake.
    """
    outer = conn.parser
    inner = getattr(outer, "gi_yieldfrom", None)
    waiting = getattr(inner, "gi_yieldfrom", None)
    if (
        getattr(inner, "gi_code", None) is not _FRAME_LOOP
        or getattr(waiting, "gi_code", None) is not _AT_EOF
        or conn.reader.buffer
    ):
        return False
    conn.parser = Protocol.parse(conn)
    next(conn.parser)
    outer.close()
    return True


_TEXT_FIN: Final = 0x81  # FIN, no RSV bits, opcode 1 (text)
_HEADER_16: Final = struct.Struct("!BBH").pack
_HEADER_64: Final = struct.Struct("!BBQ").pack


def frame(data: bytes) -> bytes:
    """``data`` as an unmasked, final text frame (RFC 6455 §5.2)."""
    size = len(data)
    if size < 126:
        return bytes((_TEXT_FIN, size)) + data
    if size < 65536:
        return _HEADER_16(_TEXT_FIN, 126, size) + data
    return _HEADER_64(_TEXT_FIN, 127, size) + data


_last_text: str | None = None
_last_frame: bytes = b""


def frame_bytes(text: str) -> bytes:
    """One unmasked, final text frame. The last result is kept: a fan-out frames each event once."""
    global _last_text, _last_frame
    if text is _last_text:
        return _last_frame
    _last_frame = frame(text.encode())
    _last_text = text
    return _last_frame


def _writable(protocol: Any, limit: int) -> int:
    """``WROTE`` if a data frame may be written to ``protocol``'s transport now, else what
    :func:`write_text` answers instead."""
    if not protocol.handshake_complete or protocol.close_sent or protocol.initial_response is not None:
        return FALLBACK
    transport = protocol.transport
    if transport.is_closing():
        return FALLBACK
    if transport.get_write_buffer_size() > limit:
        return OVER
    return WROTE


def write_texts(protocol: Any, texts: Sequence[str], limit: int) -> int:
    """Write ``texts`` as consecutive frames, in order, in one ``transport.write``.

    For a burst to one socket (a join's reply, replayed events and presence state): one write
    instead of one per frame, and so one ``send`` syscall instead of hundreds. The answers are
    :func:`write_text`'s, the buffer bound checked once before the burst: a burst is written whole
    or not at all, and a reader that does not take it is closed at its next write.
    """
    state = _writable(protocol, limit)
    if state == WROTE:
        protocol.transport.write(b"".join([frame(text.encode()) for text in texts]))
    return state


def write_framed(protocol: Any, data: bytes, limit: int) -> int:
    """Write ``data``, one or more frames already built with :func:`frame`, in one write.

    The fan-out's pass (channels/fanout.py) frames its events once and writes the same ``bytes``
    to every socket. The answers are :func:`write_text`'s.
    """
    state = _writable(protocol, limit)
    if state == WROTE:
        protocol.transport.write(data)
    return state


def write_text(protocol: Any, text: str, limit: int) -> int:
    """Write ``text`` as one frame to ``protocol``'s transport now.

    Returns:
        ``WROTE``; ``FALLBACK`` when the connection is not open for data frames (use ASGI ``send``);
        ``OVER`` when the transport's write buffer is already over ``limit`` bytes (a slow reader).
    """
    state = _writable(protocol, limit)
    if state == WROTE:
        protocol.transport.write(frame_bytes(text))
    return state
