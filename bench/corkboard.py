"""Scenarios against real ``corkboard serve`` processes: fanout, idle, rest, replay, cluster.

Events are made the honest way, by REST card updates (``PATCH /cards/{id}``: one
``card.updated`` event each), so every figure includes the request, the transaction, the commit,
the sink, the broker and the socket fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from bench.common import keepalive, log, open_sockets, phase
from bench.procs import (
    CLIENT_CPU,
    SERVER_CPU,
    PrivateDatabase,
    corkboard_server,
    cpu_seconds,
    cpu_user_system,
    memory_snapshot,
    named_cpu_seconds,
    rss_kib,
    self_cpu,
    tree_cpu_by_process,
)
from bench.procs import REDIS as REDIS_URL
from server.loadtest.phx import PhxPool
from server.loadtest.rest import Account, Rest, run_prefix
from server.loadtest.tracker import percentiles

PASSWORD = "bench-Password-123"


class Board:
    def __init__(self, board_id: str, list_ids: list[str], card_id: str) -> None:
        self.id = board_id
        self.list_ids = list_ids
        self.card_id = card_id
        self.topic = f"board:{board_id}"


async def make_board(rest: Rest, owner: Account, name: str = "Bench") -> Board:
    board = await rest.call("POST", "/boards", "/boards", token=owner.token, json={"name": name})
    bid = str(board["id"])
    lists = [
        str(
            (
                await rest.call(
                    "POST", "/boards/{id}/lists", f"/boards/{bid}/lists", token=owner.token, json={"name": n}
                )
            )["id"]
        )
        for n in ("To do", "Done")
    ]
    card = await rest.call(
        "POST",
        "/lists/{id}/cards",
        f"/lists/{lists[0]}/cards",
        token=owner.token,
        json={"title": "Moving card"},
    )
    return Board(bid, lists, str(card["id"]))


async def board_seq(rest: Rest, owner: Account, board: Board) -> int:
    body = await rest.call("GET", "/boards/{id}", f"/boards/{board.id}", token=owner.token)
    return int(body["seq"])


async def updates(
    rest: Rest, owner: Account, board: Board, count: int, rate: float, concurrency: int = 16
) -> tuple[float, int]:
    """``count`` card updates at ``rate``/s (0: as fast as ``concurrency`` requests in flight allow).

    Returns the wall time of the first request and the number of events the board's seq advanced.
    """
    before = await board_seq(rest, owner, board)
    sem = asyncio.Semaphore(concurrency)
    path = f"/cards/{board.card_id}"

    async def one(i: int) -> None:
        try:
            await rest.call("PATCH", "/cards/{id}", path, token=owner.token, json={"title": f"Update {i}"})
        finally:
            sem.release()

    first = time.time()
    start = time.monotonic()
    tasks = []
    for i in range(count):
        if rate > 0:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await sem.acquire()
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks, return_exceptions=True)
    return first, await board_seq(rest, owner, board) - before


async def run_fanout(
    sockets: int, events: int, rate: float, *, ws: str | None, database: str = "sqlite"
) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        env = {"WS_IMPL": ws} if ws else {}
        if database == "postgresql":
            env.update(_pg_env(await stack.enter_async_context(PrivateDatabase())))
        return {"database": database, **await _run_fanout(env, sockets, events, rate, ws)}


async def _run_fanout(
    env: dict[str, str], sockets: int, events: int, rate: float, ws: str | None
) -> dict[str, Any]:
    proc, url = corkboard_server(env)
    rest = Rest(url)
    try:
        owner = await rest.sign_up(run_prefix(), 0, PASSWORD)
        board = await make_board(rest, owner)
        # The REST side alone (no socket joined): server CPU per event for request + transaction.
        await updates(rest, owner, board, 20, 0)  # warm up
        cpu0 = cpu_seconds(proc.pid)
        _, made = await updates(rest, owner, board, events, 0)
        rest_cpu_per_event = (cpu_seconds(proc.pid) - cpu0) / max(1, made)
        pool = PhxPool(url)
        joined = len(await open_sockets(pool, sockets, [owner.token], [board.topic]))
        alive = asyncio.create_task(keepalive(pool))
        await asyncio.sleep(1)
        results = []
        for name, pace in ((f"paced {rate:g}/s", rate), ("burst", 0.0)):
            writes0 = await fanout_writes(url)
            result = await phase(
                name, pool, proc.pid, joined, lambda p=pace: updates(rest, owner, board, events, p)
            )
            writes, frames = (b - a for a, b in zip(writes0, await fanout_writes(url), strict=True))
            # > 1: events that piled up while a sweep was under way went to a socket in one write
            result["events_per_write"] = round(frames / writes, 2) if writes else None
            results.append(result)
        alive.cancel()
        pool.close_all()
        for r in results:  # what is left for the fan-out once the REST side is taken out
            fan_cpu = r["server_cpu_s"] - rest_cpu_per_event * r["events"]
            r["fanout_us_per_delivery"] = round(fan_cpu / max(1, r["unique"]) * 1e6, 2)
        return {
            "server": "corkboard",
            "rest_cpu_ms_per_event": round(rest_cpu_per_event * 1000, 2),
            "ws_impl": ws or "default",
            "sockets": joined,
            "events": events,
            "phases": results,
            "socket_errors": dict(pool.errors),
            "rest_errors": dict(rest.errors),
            "close_codes": dict(pool.close_codes),
        }
    finally:
        await rest.close()
        proc.stop()


async def fanout_writes(url: str) -> tuple[float, float]:
    """The server's fan-out writes so far and the event frames they carried (``/metrics``)."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http, http.get(url.rstrip("/") + "/metrics") as response:
        text = await response.text()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    writes, frames = (samples.get(f"corkboard_fanout_{kind}_total", 0.0) for kind in ("writes", "frames"))
    return writes, frames


async def sign_up_many(rest: Rest, n: int) -> list[Account]:
    prefix = run_prefix()
    sem = asyncio.Semaphore(4)

    async def one(i: int) -> Account:
        async with sem:
            return await rest.sign_up(prefix, i, PASSWORD)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def boards_with_members(rest: Rest, accounts: list[Account], count: int) -> list[Board]:
    owner = accounts[0]
    boards = [await make_board(rest, owner, f"Bench {i}") for i in range(count)]
    for board in boards:
        for acc in accounts[1:]:
            await rest.call(
                "POST",
                "/boards/{id}/members",
                f"/boards/{board.id}/members",
                token=owner.token,
                json={"user_id": acc.user_id, "role": "member"},
            )
    return boards


async def run_idle(sockets: int, boards: int, idle_seconds: float, *, ws: str | None) -> dict[str, Any]:
    env = {"WS_IMPL": ws} if ws else {}
    proc, url = corkboard_server(env)
    rest = Rest(url)
    try:
        accounts = await sign_up_many(rest, 10)
        plan = await boards_with_members(rest, accounts, boards)
        await asyncio.sleep(1)
        rss_before = rss_kib(proc.pid)
        snap_before = memory_snapshot(proc.pid)
        pool = PhxPool(url)
        # phoenix.js sends a heartbeat every 30 s; the server closes sockets silent for 60 s.
        alive = asyncio.create_task(keepalive(pool, 30.0))
        t = time.monotonic()
        joined = len(
            await open_sockets(
                pool, sockets, [a.token for a in accounts], [b.topic for b in plan], concurrency=200
            )
        )
        ramp = time.monotonic() - t
        await asyncio.sleep(5)  # let allocations settle
        rss_after = rss_kib(proc.pid)
        snap_after = memory_snapshot(proc.pid)
        if snap_before and snap_after:
            log(f"memory: python -m bench.memory {snap_before} {snap_after} --per {joined}")
        # Idle window: nothing but those heartbeats.
        frames0 = pool.frames_in
        user0, system0 = cpu_user_system(proc.pid)
        await asyncio.sleep(idle_seconds)
        user1, system1 = cpu_user_system(proc.pid)
        cpu = (user1 - user0) + (system1 - system0)
        beats = pool.frames_in - frames0  # heartbeat replies received in the window
        alive.cancel()
        still_open = pool.open_count
        pool.close_all()
        per_socket = (rss_after - rss_before) / max(1, joined)
        log(
            f"idle: {joined} sockets, {per_socket:.1f} KiB/socket, "
            f"{cpu:.3f} s CPU over {idle_seconds:g}s idle"
        )
        return {
            "server": "corkboard",
            "ws_impl": ws or "default",
            "sockets": joined,
            "boards": boards,
            "ramp_seconds": round(ramp, 1),
            "rss_before_kib": rss_before,
            "rss_after_kib": rss_after,
            "kib_per_socket": round(per_socket, 2),
            "idle_seconds": idle_seconds,
            "idle_cpu_seconds": round(cpu, 3),
            "idle_cpu_user_seconds": round(user1 - user0, 3),
            "idle_cpu_system_seconds": round(system1 - system0, 3),
            "heartbeats_in_window": beats,
            "idle_cpu_percent": round(cpu / idle_seconds * 100, 2),
            "idle_cpu_us_per_heartbeat": round(cpu / beats * 1e6, 1) if beats else None,
            "still_open": still_open,
            "socket_errors": dict(pool.errors),
            "close_codes": dict(pool.close_codes),
        }
    finally:
        await rest.close()
        proc.stop()


def _pg_env(db_url: str) -> dict[str, str]:
    """PostgreSQL + Redis; one secret for every instance (they verify each other's tokens)."""
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": f"cbbench:{uuid.uuid4().hex[:8]}",
        "SECRET_KEY": "bench-secret-" + uuid.uuid4().hex,
    }


async def run_rest(rate: float, seconds: float, workers: int) -> dict[str, Any]:
    async with PrivateDatabase() as db_url:
        proc, url = corkboard_server(_pg_env(db_url), workers=workers, cpu=None)
        rest = Rest(url, concurrency=128)
        try:
            accounts = await sign_up_many(rest, 8)
            plans = [await make_board(rest, acc, f"Rest {i}") for i, acc in enumerate(accounts)]
            cards: list[list[str]] = [[p.card_id] for p in plans]
            rest.timings.clear()
            rest.errors.clear()
            by_process0 = tree_cpu_by_process(proc.pid)
            cpu0 = sum(by_process0.values())
            client0, pg0 = self_cpu(), named_cpu_seconds("postgres")
            total = int(rate * seconds)
            start = time.monotonic()
            tasks = []

            async def one(i: int) -> None:
                k = i % len(accounts)
                acc, plan = accounts[k], plans[k]
                op = i % 3
                if op == 0:
                    card = await rest.call(
                        "POST",
                        "/lists/{id}/cards",
                        f"/lists/{plan.list_ids[i % 2]}/cards",
                        token=acc.token,
                        json={"title": f"Card {i}"},
                    )
                    cards[k].append(str(card["id"]))
                elif op == 1:
                    card_id = cards[k][(i // 3) % len(cards[k])]
                    await rest.call(
                        "POST",
                        "/cards/{id}/move",
                        f"/cards/{card_id}/move",
                        token=acc.token,
                        json={"list_id": plan.list_ids[(i // 2) % 2]},
                    )
                else:
                    card_id = cards[k][(i // 5) % len(cards[k])]
                    await rest.call("GET", "/cards/{id}", f"/cards/{card_id}", token=acc.token)

            for i in range(total):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks, return_exceptions=True)
            elapsed = time.monotonic() - start
            by_process = tree_cpu_by_process(proc.pid)
            server_cpu = sum(by_process.values()) - cpu0
            client_cpu = self_cpu() - client0
            pg_cpu = named_cpu_seconds("postgres") - pg0
            routes = {}
            everything: list[float] = []
            for route, values in sorted(rest.timings.items()):
                everything.extend(values)
                routes[route] = {
                    k: round(v * 1000, 2) if k != "count" else int(v) for k, v in percentiles(values).items()
                }
            overall = {
                k: round(v * 1000, 2) if k != "count" else int(v) for k, v in percentiles(everything).items()
            }
            log(
                f"rest: {len(everything)} requests in {elapsed:.1f}s, "
                f"p95 {overall['p95']} ms, p99 {overall['p99']} ms"
            )
            return {
                "server": "corkboard",
                "database": "postgresql",
                "workers": workers,
                "rate": rate,
                "requests": len(everything),
                "seconds": round(elapsed, 2),
                "achieved_rate": round(len(everything) / elapsed, 1),
                "server_cpu_ms_per_request": round(server_cpu / max(1, len(everything)) * 1000, 2),
                "server_cpu_percent": round(server_cpu / elapsed * 100, 1),
                # Per process (the supervisor and each worker): shows how evenly the workers share.
                "server_cpu_percent_by_process": sorted(
                    (
                        round((cpu - by_process0.get(pid, 0.0)) / elapsed * 100, 1)
                        for pid, cpu in by_process.items()
                    ),
                    reverse=True,
                ),
                # The load client and PostgreSQL share the machine: their CPU shows who waited on whom.
                "client_cpu_percent": round(client_cpu / elapsed * 100, 1),
                "postgres_cpu_percent": round(pg_cpu / elapsed * 100, 1),
                "overall_ms": overall,
                "routes_ms": routes,
                "errors": dict(rest.errors),
            }
        finally:
            await rest.close()
            proc.stop()


async def run_replay(behind: int, repeat: int) -> dict[str, Any]:
    proc, url = corkboard_server()
    rest = Rest(url)
    try:
        owner = await rest.sign_up(run_prefix(), 0, PASSWORD)
        board = await make_board(rest, owner)
        start_seq = await board_seq(rest, owner, board)
        await updates(rest, owner, board, behind, 0, concurrency=8)
        end_seq = await board_seq(rest, owner, board)
        gap = end_seq - start_seq
        pool = PhxPool(url)
        sock = await pool.connect(owner.token)
        times: list[float] = []
        for _ in range(repeat):
            sent = time.time()
            await sock.join(board.topic, {"last_seq": start_seq}, timeout=30)
            sub = sock.subs[board.topic]
            deadline = time.monotonic() + 30
            while sub.delivered < gap and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            if sub.delivered < gap:
                raise RuntimeError(f"replay delivered {sub.delivered} of {gap}")
            times.append((pool.tracker.last_receipt - sent) * 1000)
            await sock.leave(board.topic)
        pool.close_all()
        log(f"replay: {gap} events caught up in {min(times):.1f}-{max(times):.1f} ms")
        return {
            "server": "corkboard",
            "behind": gap,
            "repeat": repeat,
            "catch_up_ms": [round(t, 2) for t in times],
            "catch_up_ms_median": round(sorted(times)[len(times) // 2], 2),
            "duplicated": pool.tracker.dups,
            "out_of_order": pool.tracker.out_of_order,
        }
    finally:
        await rest.close()
        proc.stop()


async def run_cluster(sockets: int, events: int, rate: float) -> dict[str, Any]:
    async with PrivateDatabase() as db_url:
        env = _pg_env(db_url)
        # One core each (the client shares B's): with both on one core, B waited for A's CPU and
        # the difference measured scheduling, not the trip through Redis.
        a, url_a = corkboard_server(env, cpu=SERVER_CPU)
        b, url_b = corkboard_server(env, cpu=CLIENT_CPU)
        rest = Rest(url_a)
        try:
            owner = await rest.sign_up(run_prefix(), 0, PASSWORD)
            board = await make_board(rest, owner)
            same, cross = PhxPool(url_a), PhxPool(url_b)
            n_same = len(await open_sockets(same, sockets // 2, [owner.token], [board.topic]))
            n_cross = len(await open_sockets(cross, sockets - sockets // 2, [owner.token], [board.topic]))
            alive = [asyncio.create_task(keepalive(same)), asyncio.create_task(keepalive(cross))]
            await updates(rest, owner, board, 5, 0)
            await asyncio.sleep(1)
            s0, c0 = len(same.tracker.latencies), len(cross.tracker.latencies)
            su, cu = same.tracker.unique, cross.tracker.unique
            _, made = await updates(rest, owner, board, events, rate)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                same.tracker.unique - su < n_same * made or cross.tracker.unique - cu < n_cross * made
            ):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            for t in alive:
                t.cancel()
            ls = percentiles(x * 1000 for x in same.tracker.latencies[s0:])
            lc = percentiles(x * 1000 for x in cross.tracker.latencies[c0:])
            same.close_all()
            cross.close_all()
            out = {
                "server": "corkboard x2 + Redis",
                "sockets_same": n_same,
                "sockets_cross": n_cross,
                "events": made,
                "same_instance_ms": {k: round(v, 2) for k, v in ls.items()},
                "cross_instance_ms": {k: round(v, 2) for k, v in lc.items()},
                "cross_minus_same_p50_ms": round(lc["p50"] - ls["p50"], 2),
                "lost": max(0, n_same * made - (same.tracker.unique - su))
                + max(0, n_cross * made - (cross.tracker.unique - cu)),
                "duplicated": same.tracker.dups + cross.tracker.dups,
                "socket_errors": {**same.errors, **cross.errors},
            }
            log(f"cluster: p50 same {ls['p50']:.2f} ms, cross {lc['p50']:.2f} ms")
            return out
        finally:
            await rest.close()
            a.stop()
            b.stop()
