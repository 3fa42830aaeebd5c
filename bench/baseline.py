"""``baseline``: the bare ``websockets.broadcast()`` server, measured by the load client."""

from __future__ import annotations

from typing import Any

from bench.baseline_server import TOPIC
from bench.common import log, open_sockets, phase
from bench.procs import baseline_server
from server.loadtest.phx import PhxPool


async def run_baseline(sockets: int, events: int, rate: float) -> dict[str, Any]:
    proc, port = baseline_server()
    try:
        pool = PhxPool(f"ws://127.0.0.1:{port}/websocket")
        joined = len(await open_sockets(pool, sockets, [None], [TOPIC]))
        control = await pool.connect(None)

        def fire(rate: float):  # type: ignore[no-untyped-def]
            async def go() -> tuple[float, int]:
                reply = await control.call("bench", "fire", {"events": events, "rate": rate}, timeout=600)
                return float(reply.response["first_at"]), events

            return go

        results = [await phase(f"paced {rate:g}/s", pool, proc.pid, joined, fire(rate))]
        results.append(await phase("burst", pool, proc.pid, joined, fire(0)))
        pool.close_all()
        return {
            "scenario": "baseline",
            "sockets": joined,
            "events": events,
            "phases": results,
            "socket_errors": dict(pool.errors),
        }
    finally:
        proc.stop()
        log("baseline server stopped")
