"""What every scenario does on the client side: open sockets, run a phase, summarise it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.procs import cpu_user_system, self_cpu
from server.loadtest.phx import PhxPool, PhxSocket
from server.loadtest.tracker import percentiles


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def open_sockets(
    pool: PhxPool,
    count: int,
    tokens: list[str | None],
    topics: list[str],
    *,
    concurrency: int = 100,
    join_payload: dict[str, Any] | None = None,
) -> list[PhxSocket]:
    """Open ``count`` sockets (token and topic chosen round robin) and join each to its topic."""
    sem = asyncio.Semaphore(concurrency)
    out: list[PhxSocket] = []

    async def one(i: int) -> None:
        async with sem:
            try:
                sock = await pool.connect(tokens[i % len(tokens)], timeout=30)
            except Exception:
                return
            try:
                await sock.join(topics[i % len(topics)], join_payload, timeout=30)
            except Exception as exc:
                pool.errors[f"join:{type(exc).__name__}:{exc}"[:80]] += 1
                return
            out.append(sock)

    t = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    log(f"{len(out)}/{count} sockets joined in {time.monotonic() - t:.1f}s")
    if len(out) < count:
        log(f"socket errors: {dict(pool.errors)}")
    return out


async def wait_delivered(pool: PhxPool, target: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pool.tracker.unique < target:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def phase(
    name: str,
    pool: PhxPool,
    server_pid: int | list[int],
    sockets: int,
    trigger: Callable[[], Awaitable[tuple[float, int]]],
    *,
    drain: float = 30.0,
) -> dict[str, Any]:
    """Run ``trigger`` and measure the deliveries it causes on ``sockets`` joined sockets.

    ``trigger`` returns the wall time the first event was sent and how many events it made.
    """
    tracker = pool.tracker
    pids = server_pid if isinstance(server_pid, list) else [server_pid]
    lat_from = len(tracker.latencies)
    unique0, delivered0, dups0 = tracker.unique, tracker.delivered, tracker.dups
    server_us0 = [cpu_user_system(p) for p in pids]
    client_cpu0 = self_cpu()
    first_sent, events = await trigger()
    expected = sockets * events
    complete = await wait_delivered(pool, unique0 + expected, drain)
    await asyncio.sleep(0.05)  # late duplicates show up here
    server_us = [cpu_user_system(p) for p in pids]
    server_user = sum(u for u, _ in server_us) - sum(u for u, _ in server_us0)
    server_system = sum(k for _, k in server_us) - sum(k for _, k in server_us0)
    server_cpu = server_user + server_system
    client_cpu = self_cpu() - client_cpu0
    unique = tracker.unique - unique0
    span = max(1e-9, tracker.last_receipt - first_sent)
    lat = percentiles(x * 1000 for x in tracker.latencies[lat_from:])
    result = {
        "phase": name,
        "events": events,
        "sockets": sockets,
        "expected": expected,
        "delivered": tracker.delivered - delivered0,
        "unique": unique,
        "lost": max(0, expected - unique),
        "duplicated": tracker.dups - dups0,
        "complete": complete,
        "seconds": round(span, 3),
        "deliveries_per_s": round(unique / span),
        "latency_ms": {k: round(v, 2) for k, v in lat.items()},
        "server_cpu_s": round(server_cpu, 3),
        # The kernel's share (send syscalls, and on loopback the peer's receive path) vs Python's.
        "server_system_s": round(server_system, 3),
        "client_cpu_s": round(client_cpu, 3),
        "server_us_per_delivery": round(server_cpu / max(1, unique) * 1e6, 2),
        "client_us_per_delivery": round(client_cpu / max(1, unique) * 1e6, 2),
    }
    log(
        f"{name}: {unique}/{expected} delivered, {result['deliveries_per_s']}/s, p99 {lat['p99']:.1f} ms, "
        f"server {result['server_us_per_delivery']} us/delivery"
    )
    return result


async def keepalive(pool: PhxPool, every: float = 25.0) -> None:
    """Phoenix heartbeats on every socket (the server closes sockets silent for 60 s)."""
    while True:
        await asyncio.sleep(every)
        pool.heartbeat_all()
