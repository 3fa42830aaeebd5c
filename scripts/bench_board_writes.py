"""Write throughput and latency on ONE board (the per-board lock is the bottleneck by design).

Starts a real ``corkboard serve`` (SQLite, or PostgreSQL + Redis on a throwaway database), has
W concurrent HTTP writers create N cards each on the same list, then times ``GET /boards/{id}``.

    python scripts/bench_board_writes.py sqlite 1 20 25
    python scripts/bench_board_writes.py postgres 2 20 25   # backend workers writers per-writer
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persistence.db import upgrade
from tests.support import services
from tests.support.live import LiveServer

PASSWORD = "correct horse battery staple"


async def run(backend: str, workers: int, writers: int, per_writer: int) -> None:
    env = {
        "DATA_DIR": tempfile.mkdtemp(prefix="corkboard-bench-"),
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "10000000",
        "AUTH_RATE_LIMIT_PER_MINUTE": "100000",
        "REDIS_PREFIX": "bench" + uuid.uuid4().hex[:8],
    }
    db_url = None
    if backend == "postgres":
        db_url = await asyncio.to_thread(services.create_database)
        await asyncio.to_thread(upgrade, db_url)
        env |= {"DATABASE_URL": db_url, "REDIS_URL": services.redis_url()}
    server = LiveServer(env, workers=workers).start()
    try:
        limits = httpx.Limits(max_connections=writers)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
            name = "bench" + uuid.uuid4().hex[:8]
            await http.post(
                "/api/v1/auth/register",
                json={"email": f"{name}@example.test", "username": name, "password": PASSWORD},
            )
            login = await http.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            board = (await http.post("/api/v1/boards", json={"name": "bench"}, headers=headers)).json()["id"]
            lst = (
                await http.post(f"/api/v1/boards/{board}/lists", json={"name": "l"}, headers=headers)
            ).json()
            latencies: list[float] = []

            async def writer(n: int) -> None:
                for i in range(per_writer):
                    start = time.perf_counter()
                    r = await http.post(
                        f"/api/v1/lists/{lst['id']}/cards", json={"title": f"{n}-{i}"}, headers=headers
                    )
                    assert r.status_code == 201, r.text
                    latencies.append(time.perf_counter() - start)

            start = time.perf_counter()
            await asyncio.gather(*(writer(n) for n in range(writers)))
            elapsed = time.perf_counter() - start
            latencies.sort()
            total = writers * per_writer
            print(
                f"{backend}, {workers} worker(s), {writers} writer(s): {total} card creates on one board in "
                f"{elapsed:.2f} s = {total / elapsed:.0f}/s; p50 {latencies[total // 2] * 1000:.1f} ms, "
                f"p95 {latencies[int(total * 0.95)] * 1000:.1f} ms"
            )
            start = time.perf_counter()
            for _ in range(20):
                body = await http.get(f"/api/v1/boards/{board}", headers=headers)
            print(
                f"GET /boards/{{id}} with {total} cards: {(time.perf_counter() - start) / 20 * 1000:.1f} ms, "
                f"{len(body.content)} bytes"
            )
    finally:
        server.stop()
        if db_url:
            await asyncio.to_thread(services.drop_database, db_url)


if __name__ == "__main__":
    backend_, workers_, writers_, per_ = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    asyncio.run(run(backend_, workers_, writers_, per_))
