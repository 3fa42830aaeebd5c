"""Response compression (SPEC §6: JSON bodies are compressed when the client accepts it).

Litestar's own :class:`CompressionMiddleware`, gzip only: brotli would add a native package to the
hash-locked requirements, and every HTTP client speaks gzip. It compresses HTTP answers of at least
:data:`MINIMUM_SIZE` bytes when ``Accept-Encoding`` names gzip; smaller ones are not worth the
header and the CPU. WebSocket traffic never passes through it (the middleware handles HTTP scopes
only, and the socket fast path writes frames straight to the transport); no route streams.

The level is zlib's 6 rather than Litestar's default 9: nearly the same size for a third of the CPU
on a large board (bench/RESULTS.md, "Session 9").
"""

from __future__ import annotations

from litestar.config.compression import CompressionConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Message, Scope, Send

MINIMUM_SIZE = 1024
GZIP_LEVEL = 6


class _Compression(CompressionMiddleware):
    """Litestar's middleware, sending ``Vary`` once per name: it appends ``Accept-Encoding`` to
    a ``Vary`` that may name it already (``GET /boards/{id}`` always does, compressed or not)."""

    def create_compression_send_wrapper(self, send: Send, compression_encoding: str, scope: Scope) -> Send:
        async def send_with_one_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders(message)
                vary = headers.get("vary")
                if vary is not None:
                    names: dict[str, str] = {}
                    for name in vary.split(","):
                        names.setdefault(name.strip().lower(), name.strip())
                    headers["vary"] = ", ".join(names.values())
            await send(message)

        return super().create_compression_send_wrapper(send_with_one_vary, compression_encoding, scope)


def compression_config() -> CompressionConfig:
    return CompressionConfig(
        backend="gzip",
        minimum_size=MINIMUM_SIZE,
        gzip_compress_level=GZIP_LEVEL,
        middleware_class=_Compression,
    )
