"""Run uvicorn with Corkboard's choices (WebSocket implementation, lifespan, workers)."""

from __future__ import annotations

import uvicorn


def run(*, host: str, port: int, workers: int, ws_impl: str, log_level: str) -> None:
    ws = "websockets-sansio" if ws_impl == "fastpath" else ws_impl
    uvicorn.run(
        "server.asgi:app",
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        ws=ws,  # type: ignore[arg-type,unused-ignore]
        ws_max_size=64 * 1024,
        ws_ping_interval=None,  # Phoenix heartbeats keep the socket alive; the server enforces the timeout
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        log_level=log_level.lower(),
    )
