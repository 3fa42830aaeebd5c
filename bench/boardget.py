"""``python -m bench board-get``: ``GET /boards/{id}`` of a big board on PostgreSQL + Redis.

One worker on a fresh database; a board with two lists and ``--cards`` cards (each with a title
and a short description), then ``--requests`` GETs of it one at a time in each of three ways:

- ``identity``: ``Accept-Encoding: identity``, the whole board as plain JSON;
- ``gzip``: ``Accept-Encoding: gzip``;
- ``revalidate``: gzip accepted and ``If-None-Match`` with the ETag of the last answer (a client
  that keeps the board and asks whether it changed).

Per way: the status, the body bytes on the wire (as received, before any decoding), the latency
at the client (p50 / p95) and the server's CPU per request (``/proc``, the worker's process tree).
Then what gzip's levels 1, 6 and 9 make of the board's body, and what each costs.
With ``--against REV`` (a revision, or another checkout's path) that tree is served beside this
one on its own database, and the requests alternate between the two, so both are measured at the
same moment (see bench/restab.py for why).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import log
from bench.corkboard import _pg_env, make_board, sign_up_many
from bench.procs import ROOT, SERVER_CPU, PrivateDatabase, Proc, corkboard_server, tree_cpu_by_process
from bench.restab import checkout, this_tree
from server.loadtest.rest import Account, Rest
from server.loadtest.tracker import percentiles

WAYS = ("identity", "gzip", "revalidate")
WARMUP = 5


class Side:
    """One server: its process, its account and its big board."""

    def __init__(self, name: str, proc: Proc, url: str) -> None:
        self.name = name
        self.proc = proc
        self.url = url
        self.account = Account(token="")
        self.board_id = ""
        self.etag: str | None = None
        self.body = b""  # the last whole (identity) body
        # auto_decompress off: the sizes are what crossed the wire
        self.http = aiohttp.ClientSession(auto_decompress=False)

    def cpu(self) -> float:
        return sum(tree_cpu_by_process(self.proc.pid).values())

    async def get(self, way: str) -> tuple[int, int, float]:
        """``(status, body bytes, seconds)`` of one GET of the board."""
        headers = {
            "Authorization": f"Bearer {self.account.token}",
            "Accept-Encoding": "identity" if way == "identity" else "gzip",
        }
        if way == "revalidate" and self.etag:
            headers["If-None-Match"] = self.etag
        start = time.perf_counter()
        async with self.http.get(f"{self.url}/api/v1/boards/{self.board_id}", headers=headers) as response:
            body = await response.read()
            seconds = time.perf_counter() - start
            if response.status not in (200, 304):
                raise RuntimeError(f"{self.name}: GET board answered {response.status}: {body[:200]!r}")
            self.etag = response.headers.get("ETag", self.etag)
            if way == "identity":
                self.body = body
            return response.status, len(body), seconds


async def _fill(url: str, cards: int) -> tuple[Account, str]:
    rest = Rest(url, concurrency=8)
    try:
        owner = (await sign_up_many(rest, 1))[0]
        board = await make_board(rest, owner, "Big board")
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with sem:
                await rest.call(
                    "POST",
                    "/lists/{id}/cards",
                    f"/lists/{board.list_ids[i % 2]}/cards",
                    token=owner.token,
                    json={
                        "title": f"Card {i}",
                        "description": f"What card {i} is about, in a sentence or two.",
                    },
                )

        await asyncio.gather(*(one(i) for i in range(cards - 1)))  # make_board made one
        return owner, board.id
    finally:
        await rest.close()


async def run_board_get(cards: int, requests: int, against: str | None) -> dict[str, Any]:
    sides: list[Side] = []
    trees: list[tuple[str, Path]] = [("this", ROOT)]
    compare = checkout(against) if against else contextlib.nullcontext((None, None))
    with compare as (other, other_is):
        if other is not None:
            trees.append(("against", other))
        async with contextlib.AsyncExitStack() as stack:
            urls = [await stack.enter_async_context(PrivateDatabase(root)) for _, root in trees]
            stack.push_async_callback(_stop, sides)
            for (name, root), db_url in zip(trees, urls, strict=True):
                proc, url = corkboard_server(_pg_env(db_url), workers=1, cpu=SERVER_CPU, root=root)
                sides.append(Side(name, proc, url))
                sides[-1].account, sides[-1].board_id = await _fill(url, cards)
            log(f"board-get: {len(sides)} server(s), a board of {cards} cards each")
            results: dict[str, dict[str, Any]] = {s.name: {} for s in sides}
            for way in WAYS:
                for side in sides:
                    side.etag = None
                    for _ in range(WARMUP):
                        await side.get(way)
                statuses: dict[str, set[int]] = {s.name: set() for s in sides}
                sizes: dict[str, list[int]] = {s.name: [] for s in sides}
                latencies: dict[str, list[float]] = {s.name: [] for s in sides}
                before = {s.name: s.cpu() for s in sides}
                for i in range(requests):
                    for side in sides if i % 2 == 0 else sides[::-1]:
                        status, size, seconds = await side.get(way)
                        statuses[side.name].add(status)
                        sizes[side.name].append(size)
                        latencies[side.name].append(seconds)
                for side in sides:
                    spent = side.cpu() - before[side.name]
                    lat = percentiles(latencies[side.name])
                    results[side.name][way] = {
                        "statuses": sorted(statuses[side.name]),
                        "body_bytes": round(sum(sizes[side.name]) / len(sizes[side.name])),
                        "latency_ms": {k: round(lat[k] * 1000, 2) for k in ("p50", "p95", "p99")},
                        "server_cpu_ms_per_request": round(spent / requests * 1000, 3),
                    }
                log(f"board-get: {way} done")
            levels = gzip_levels(sides[0].body)
    return {
        "database": "postgresql",
        "cards": cards,
        "requests_per_way": requests,
        "this": this_tree(),
        "against": against,
        "against_tree": other_is,
        "results": results,
        "gzip_levels": levels,
    }


def gzip_levels(body: bytes, repeat: int = 20) -> dict[str, dict[str, float]]:
    """What each gzip level makes of the board's body, and its CPU per compression (here, in the
    client's process: the same zlib the server's middleware calls)."""
    out = {}
    for level in (1, 6, 9):
        start = time.process_time()
        for _ in range(repeat):
            packed = gzip.compress(body, compresslevel=level)
        out[str(level)] = {
            "bytes": len(packed),
            "cpu_ms": round((time.process_time() - start) / repeat * 1000, 3),
        }
    return out


async def _stop(sides: list[Side]) -> None:
    for side in sides:
        await side.http.close()
        side.proc.stop()
