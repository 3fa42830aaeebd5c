"""Run uvicorn with Corkboard's choices (WebSocket implementation, lifespan, workers)."""

from __future__ import annotations

import resource

import uvicorn

from channels import fastpath

# Connections waiting for accept(); the kernel caps it at net.core.somaxconn. A crowd reconnecting
# after a restart arrives at once, and uvicorn's default (2048) drops SYNs sooner than needed.
BACKLOG = 4096


def raise_nofile_limit() -> tuple[int, int]:
    """Lift the soft RLIMIT_NOFILE to the hard limit: every socket is a file descriptor.

    Many systems start processes with a soft limit of 1024, which would cap an instance at about
    a thousand sockets; the hard limit is what the operator allowed (see docs/operating-at-scale.md).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def run(*, host: str, port: int, workers: int, ws_impl: str, log_level: str) -> None:
    # fastpath: uvicorn's sans-io protocol that lets the hub write pre-built frames (channels/fastpath.py)
    ws = fastpath.IMPORT_PATH if ws_impl == "fastpath" else ws_impl
    raise_nofile_limit()
    uvicorn.run(
        "server.asgi:app",
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        ws=ws,
        ws_max_size=64 * 1024,
        # Compressing each pushed frame once per socket costs more CPU per delivery than the whole
        # fast path; event frames are small (docs/performance.md).
        ws_per_message_deflate=False,
        ws_ping_interval=None,  # Phoenix heartbeats keep the socket alive; the server enforces the timeout
        lifespan="on",
        backlog=BACKLOG,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        log_level=log_level.lower(),
        # Forwarded headers are the app's to judge (TRUST_PROXY_HEADERS, TRUSTED_PROXIES): uvicorn's
        # own default would believe them from 127.0.0.1 whatever the settings say.
        proxy_headers=False,
    )
