"""One WebSocket's life: handshake and auth, then frames in until it closes.

Everything per socket lives in one small :class:`Socket` object (no task, no queue of its own);
writes go through :class:`~channels.connection.Connection`, which the hub's fan-out calls
synchronously.

Reading: with ``WS_IMPL=fastpath`` the ASGI app (:func:`serve_socket`) does the handshake and the
auth, then hands the socket to uvicorn's protocol (:meth:`FastPathProtocol.hand_off`) and returns,
so no task or coroutine chain lives on per socket. The protocol then calls
:meth:`Socket.frame_received` for each message; most are answered right there (heartbeats,
leaves, presence, ephemeral, errors), and only a join, which reads the database, runs in a task,
with the messages after it waiting (and reading paused) until it ends, so order is kept. With the
other implementations :func:`serve_socket` keeps reading through ASGI ``receive`` until the end.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from channels import fastpath, metrics, protocol
from channels.connection import Connection, server_send
from channels.topics import Identity, Unavailable
from persistence import db

if TYPE_CHECKING:
    from channels.hub import Hub, Member

log = logging.getLogger("corkboard.socket")
SUBPROTOCOL = "phoenix"
TOKEN_SUBPROTOCOL = "base64url.bearer.phx."
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
MAX_BAD_IN_A_ROW = 5
MAX_BAD_TOTAL = 50
PRESENCE_TOPICS = ("board:", "card:")  # the topics with presence (joins.py tracks it there)
EPHEMERAL_MAX_BYTES = 8 * 1024  # typing, cursors, dragging: small and frequent, never documents


class Socket:
    """Per-socket state: identity, joins, liveness and limit counters."""

    __slots__ = (
        "bad_in_a_row",
        "bad_total",
        "conn",
        "detach_after_work",
        "hub",
        "identity",
        "joins",
        "last_seen",
        "waiting",
        "window",
        "window_count",
    )

    def __init__(self, conn: Connection, identity: Identity, hub: Hub | None = None) -> None:
        self.conn = conn
        self.identity = identity
        self.hub = hub  # set when the socket is handed off (frame_received needs it)
        # While a join runs in a task: the messages that came after it, else None.
        self.waiting: list[str | bytes] | None = None
        self.detach_after_work = False
        self.joins: dict[str, Member] = {}
        self.last_seen = time.monotonic()
        self.window = 0
        self.window_count = 0
        self.bad_in_a_row = 0
        self.bad_total = 0

    def send(self, text: str) -> None:
        metrics.MESSAGES_OUT.inc()
        self.conn.send_text(text)

    def send_many(self, texts: Sequence[str]) -> None:
        """Several frames in order, written together (one transport write on the fast path)."""
        metrics.MESSAGES_OUT.inc(len(texts))
        self.conn.send_texts(texts)

    def close(self, code: int) -> None:
        self.conn.close(code)

    def over_rate(self, limit: int) -> bool:
        second = int(time.monotonic())
        if second != self.window:
            self.window, self.window_count = second, 0
        self.window_count += 1
        return bool(self.window_count > limit)

    # ------------------------------------------------------------------ fastpath.Receiver
    def frame_received(self, data: str | bytes) -> None:
        """One client message from the protocol (handed off), on the event loop, in order."""
        hub = self.hub
        assert hub is not None
        if self.waiting is not None:  # a join is in flight: keep order, and stop reading meanwhile
            self.waiting.append(data)
            self.conn.raw.hold_reading()
            return
        try:
            pending = dispatch(hub, self, data)
        except Exception:
            log.exception("socket frame failed")
            self.close(1011)
            return
        if pending is not None:
            self.waiting = []
            self.conn.raw.spawn(self._work(hub, pending))

    async def _work(self, hub: Hub, pending: Coroutine[Any, Any, None]) -> None:
        """The join in flight, then the messages that waited for it, then reading again."""
        try:
            await pending
            while self.waiting:
                more = dispatch(hub, self, self.waiting.pop(0))
                if more is not None:
                    await more
        except Exception:
            log.exception("socket loop failed")
            self.close(1011)
        finally:
            self.waiting = None
            if self.detach_after_work:
                hub.detach(self)
            else:
                self.conn.raw.release_reading()

    def connection_closed(self) -> None:
        """The connection ended (or we closed it): leave the hub on the next loop turn (this can be
        called from inside a fan-out loop over the topic's members), or after the join in flight
        (as the ASGI loop did: it saw the disconnect only after the join it was awaiting)."""
        hub = self.hub
        if hub is None:
            return
        if self.waiting is not None:
            self.detach_after_work = True
        else:
            asyncio.get_running_loop().call_soon(hub.detach, self)


def token_from_handshake(scope: dict[str, Any]) -> tuple[str | None, bool]:
    """The token (query ``token`` or the phoenix.js ``authToken`` subprotocol) and whether the
    client offered the ``phoenix`` subprotocol."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    token = (query.get("token") or [None])[0]
    offered: list[str] = list(scope.get("subprotocols") or [])
    for proto in offered:
        if proto.startswith(TOKEN_SUBPROTOCOL):
            encoded = proto[len(TOKEN_SUBPROTOCOL) :]
            encoded = encoded.replace("-", "+").replace("_", "/")
            try:
                token = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                token = None
            break
    return token or None, SUBPROTOCOL in offered


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as a browser sends it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(scope: dict[str, Any], allowed: frozenset[str]) -> bool:
    """A browser page may open a socket only from an allowed origin (``allowed``: ``*`` for any) or
    from the server's own (the page it served). Clients that are not browsers send no ``Origin``."""
    origin: bytes | None = None
    host = b""
    for name, value in scope.get("headers") or ():
        if name == b"origin":
            origin = value
        elif name == b"host":
            host = value
    if origin is None or "*" in allowed:
        return True
    text = origin.decode("latin-1").lower()
    if text in allowed:
        return True
    # the server's own page: the same host and port it was reached at (the scheme is left out: behind
    # a TLS proxy the socket's own scheme is ws while the page's is https)
    return text.partition("://")[2] == host.decode("latin-1").lower()


def _version_ok(scope: dict[str, Any]) -> bool:
    vsn: str = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("vsn") or ["2.0.0"])[0]
    return vsn.startswith("2.")


async def serve_socket(hub: Hub, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI app behind ``/socket/websocket``."""
    if scope["type"] != "websocket":
        await send(
            {"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"WebSocket endpoint: connect with vsn=2.0.0"})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    token, wants_phoenix = token_from_handshake(scope)
    try:
        identity = (
            await hub.authenticate(token)
            if token and _version_ok(scope) and origin_allowed(scope, hub.allowed_origins)
            else None
        )
    except Unavailable:
        await refuse_unavailable(scope, send)
        return
    if identity is None or hub.stopping:
        await send({"type": "websocket.close", "code": CLOSE_POLICY})  # before accept: HTTP 403
        return
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if wants_phoenix:
        accept["subprotocol"] = SUBPROTOCOL
    await send(accept)
    raw = (scope.get("extensions") or {}).get(fastpath.EXTENSION)  # WS_IMPL=fastpath
    socket = Socket(Connection(server_send(send), hub.settings.socket_outbound_limit, raw), identity, hub)
    hub.attach(socket)
    if raw is not None and raw.hand_off(socket):
        return  # the protocol calls socket.frame_received / connection_closed from now on
    try:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                break
            if kind != "websocket.receive":
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            await handle_frame(hub, socket, data)
            if socket.conn.closed:
                # Keep reading until the peer answers our close (or goes), so uvicorn can finish.
                continue
    except Exception:
        log.exception("socket loop failed")
        socket.close(1011)
    finally:
        hub.detach(socket)


async def refuse_unavailable(scope: dict[str, Any], send: Any) -> None:
    """Refuse an upgrade the database could not judge, in a way that says "retry", not "bad token":
    HTTP 503 with ``Retry-After`` where the server can answer an upgrade with a response of its own
    (ASGI's ``websocket.http.response``: every uvicorn implementation, the fast path included),
    else accept and close with 1013 (try again later). phoenix.js reconnects after either, with
    its backoff."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = msgspec.json.encode(
            {
                "type": "https://corkboard.dev/problems/unavailable",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "The database is unavailable right now; retry after the time in Retry-After.",
            }
        )
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"retry-after", str(db.RETRY_AFTER_SECONDS).encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN, "reason": "database unavailable"})


async def handle_frame(hub: Hub, socket: Socket, data: str | bytes) -> None:
    """Handle one client frame, awaiting a join to its end."""
    pending = dispatch(hub, socket, data)
    if pending is not None:
        await pending


def dispatch(hub: Hub, socket: Socket, data: str | bytes) -> Coroutine[Any, Any, None] | None:
    """Handle one client frame now; a join (which reads the database) is returned to be awaited.

    Every failure is an error reply or a close, never an exception.
    """
    socket.last_seen = time.monotonic()
    metrics.MESSAGES_IN.inc()
    if socket.conn.closed:
        return None
    try:
        frame = protocol.decode_frame(data)
    except protocol.MalformedFrame as bad:
        socket.bad_in_a_row += 1
        socket.bad_total += 1
        if bad.ref is not None:
            socket.send(protocol.error_reply(bad.join_ref, bad.ref, bad.topic or "phoenix", "bad_request"))
        if socket.bad_in_a_row >= MAX_BAD_IN_A_ROW or socket.bad_total >= MAX_BAD_TOTAL:
            socket.close(CLOSE_POLICY)
        return None
    socket.bad_in_a_row = 0
    topic, event = frame.topic, frame.event
    if topic == protocol.HEARTBEAT_TOPIC and event == protocol.HEARTBEAT:
        socket.send(protocol.reply(None, frame.ref, topic, "ok"))
        return None
    if socket.over_rate(hub.settings.pushes_per_second):
        socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "rate_limited"))
        return None
    if event == protocol.JOIN:
        return hub.join(socket, frame)
    member = socket.joins.get(topic)
    if member is None or (frame.join_ref is not None and member.join_ref != frame.join_ref):
        socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "unmatched topic"))
        return None
    if event == protocol.LEAVE:
        hub.leave(socket, topic)
        socket.send(protocol.reply(frame.join_ref, frame.ref, topic, "ok"))
    elif event == "presence" and topic.startswith(PRESENCE_TOPICS):
        if len(frame.payload) > hub.settings.presence_meta_max_bytes:
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "too_large"))
            return None
        try:
            meta = protocol.decode_payload(frame.payload, dict[str, Any])
        except protocol.BadPayload:
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "bad_request"))
            return None
        refused = hub.update_presence(member, meta)
        if refused is None:
            socket.send(protocol.reply(frame.join_ref, frame.ref, topic, "ok"))
        else:
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, refused))
    elif event == "ephemeral" and member.board_id is not None:
        if not member.may_edit:
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "unauthorized"))
            return None
        try:
            payload = protocol.decode_payload(frame.payload, protocol.EphemeralPayload)
        except protocol.BadPayload:
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "bad_request"))
            return None
        if len(frame.payload) > EPHEMERAL_MAX_BYTES:
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "too_large"))
            return None
        hub.relay_ephemeral(member, payload)
    else:
        socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "unknown event"))
    return None
