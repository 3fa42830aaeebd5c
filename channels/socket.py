"""One WebSocket's life: handshake and auth, then frames in until it closes.

Everything per socket lives in one small :class:`Socket` object (no task, no queue of its own):
the ASGI task that uvicorn runs for the connection reads frames; writes go through
:class:`~channels.connection.Connection`, which the hub's fan-out calls synchronously.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import msgspec

from channels import fastpath, protocol
from channels.connection import Connection, server_send
from channels.topics import Identity
from server import metrics

if TYPE_CHECKING:
    from channels.hub import Hub, Member

log = logging.getLogger("corkboard.socket")
SUBPROTOCOL = "phoenix"
TOKEN_SUBPROTOCOL = "base64url.bearer.phx."
CLOSE_POLICY = 1008
MAX_BAD_IN_A_ROW = 5
MAX_BAD_TOTAL = 50
EPHEMERAL_MAX_BYTES = 8 * 1024  # typing, cursors, dragging: small and frequent, never documents


class Socket:
    """Per-socket state: identity, joins, liveness and limit counters."""

    __slots__ = (
        "bad_in_a_row",
        "bad_total",
        "conn",
        "identity",
        "joins",
        "last_seen",
        "window",
        "window_count",
    )

    def __init__(self, conn: Connection, identity: Identity) -> None:
        self.conn = conn
        self.identity = identity
        self.joins: dict[str, Member] = {}
        self.last_seen = time.monotonic()
        self.window = 0
        self.window_count = 0
        self.bad_in_a_row = 0
        self.bad_total = 0

    def send(self, text: str) -> None:
        metrics.MESSAGES_OUT.inc()
        self.conn.send_text(text)

    def close(self, code: int) -> None:
        self.conn.close(code)

    def over_rate(self, limit: int) -> bool:
        second = int(time.monotonic())
        if second != self.window:
            self.window, self.window_count = second, 0
        self.window_count += 1
        return bool(self.window_count > limit)


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
    identity = await hub.authenticate(token) if token and _version_ok(scope) else None
    if identity is None or hub.stopping:
        await send({"type": "websocket.close", "code": CLOSE_POLICY})  # before accept: HTTP 403
        return
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if wants_phoenix:
        accept["subprotocol"] = SUBPROTOCOL
    await send(accept)
    raw = (scope.get("extensions") or {}).get(fastpath.EXTENSION)  # WS_IMPL=fastpath
    socket = Socket(Connection(server_send(send), hub.settings.socket_outbound_limit, raw), identity)
    hub.attach(socket)
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


async def handle_frame(hub: Hub, socket: Socket, data: str | bytes) -> None:
    """Dispatch one client frame; every failure is an error reply or a close, never an exception."""
    socket.last_seen = time.monotonic()
    metrics.MESSAGES_IN.inc()
    if socket.conn.closed:
        return
    try:
        frame = protocol.decode_frame(data)
    except protocol.MalformedFrame as bad:
        socket.bad_in_a_row += 1
        socket.bad_total += 1
        if bad.ref is not None:
            socket.send(protocol.error_reply(bad.join_ref, bad.ref, bad.topic or "phoenix", "bad_request"))
        if socket.bad_in_a_row >= MAX_BAD_IN_A_ROW or socket.bad_total >= MAX_BAD_TOTAL:
            socket.close(CLOSE_POLICY)
        return
    socket.bad_in_a_row = 0
    topic, event = frame.topic, frame.event
    if topic == protocol.HEARTBEAT_TOPIC and event == protocol.HEARTBEAT:
        socket.send(protocol.reply(None, frame.ref, topic, "ok"))
        return
    if socket.over_rate(hub.settings.pushes_per_second):
        socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "rate_limited"))
        return
    if event == protocol.JOIN:
        await hub.join(socket, frame)
        return
    member = socket.joins.get(topic)
    if member is None or (frame.join_ref is not None and member.join_ref != frame.join_ref):
        socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "unmatched topic"))
        return
    if event == protocol.LEAVE:
        hub.leave(socket, topic)
        socket.send(protocol.reply(frame.join_ref, frame.ref, topic, "ok"))
    elif event == "presence" and member.presence_ref is not None:
        try:
            meta = msgspec.json.decode(frame.payload, type=dict[str, Any])
        except (msgspec.DecodeError, msgspec.ValidationError):
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "bad_request"))
            return
        hub.update_presence(member, meta)
        socket.send(protocol.reply(frame.join_ref, frame.ref, topic, "ok"))
    elif event == "ephemeral" and member.board_id is not None:
        try:
            payload = msgspec.json.decode(frame.payload, type=protocol.EphemeralPayload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "bad_request"))
            return
        if len(frame.payload) > EPHEMERAL_MAX_BYTES:
            socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "too_large"))
            return
        hub.relay_ephemeral(member, payload)
    else:
        socket.send(protocol.error_reply(frame.join_ref, frame.ref, topic, "unknown event"))
