"""The socket fast path: one pre-built WebSocket frame written to every transport, no await per socket.

``WS_IMPL=fastpath`` (the default) runs uvicorn with :class:`FastPathProtocol`, uvicorn's sans-io
WebSocket protocol plus one thing: once the handshake has been parsed it puts itself in the ASGI
scope under ``extensions["corkboard.fastpath"]``. Litestar still does the routing, the handshake
and the auth through plain ASGI; only the hub's fan-out uses the extension, through
:func:`write_text`, to write the frame it already encoded straight to the connection's transport.

Why: the per-socket ``await send()`` through Litestar's and uvicorn's send wrappers, the per-socket
``str.encode`` and websockets' per-socket framing were about half of the server's CPU per delivery
(bench/RESULTS.md). Here a frame is framed once per event (:func:`frame_bytes` remembers the last
text it framed, and a fan-out loop passes the same ``str`` object to every socket), and each socket
costs one buffer-size check and one ``transport.write``.

Safety: a frame goes this way only while the connection is open for data (handshake sent, no close
sent, transport not closing); otherwise :func:`write_text` answers ``FALLBACK`` and the caller uses
the ordinary ASGI ``send``, so close frames and errors still go through uvicorn. A transport whose
write buffer is over the bound answers ``OVER``: the caller closes that socket with 1013 instead of
letting its backlog grow. Server frames are never masked and never fragmented here; a frame without
RSV1 is valid even when permessage-deflate was negotiated (RFC 7692 §6).

This depends on uvicorn internals (``transport``, ``handshake_complete``, ``close_sent``,
``initial_response`` of ``WebSocketsSansIOProtocol``): uvicorn is pinned in pyproject.toml and
tests/bench/test_fastpath.py checks those attributes and the whole path against the pinned version.
"""

from __future__ import annotations

from typing import Any, Final

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

EXTENSION: Final = "corkboard.fastpath"
IMPORT_PATH: Final = "channels.fastpath:FastPathProtocol"

WROTE: Final = 0
FALLBACK: Final = 1
OVER: Final = 2


class FastPathProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-io WebSocket protocol, exposed to the app through the ASGI scope."""

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


_last_text: str | None = None
_last_frame: bytes = b""


def frame_bytes(text: str) -> bytes:
    """One unmasked, final text frame. The last result is kept: a fan-out frames each event once."""
    global _last_text, _last_frame
    if text is _last_text:
        return _last_frame
    _last_frame = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    _last_text = text
    return _last_frame


def write_text(protocol: Any, text: str, limit: int) -> int:
    """Write ``text`` as one frame to ``protocol``'s transport now.

    Returns:
        ``WROTE``; ``FALLBACK`` when the connection is not open for data frames (use ASGI ``send``);
        ``OVER`` when the transport's write buffer is already over ``limit`` bytes (a slow reader).
    """
    if not protocol.handshake_complete or protocol.close_sent or protocol.initial_response is not None:
        return FALLBACK
    transport = protocol.transport
    if transport.is_closing():
        return FALLBACK
    if transport.get_write_buffer_size() > limit:
        return OVER
    transport.write(frame_bytes(text))
    return WROTE
