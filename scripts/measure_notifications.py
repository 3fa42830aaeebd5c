"""Measure what notifications cost a write, and how soon a webhook delivery lands.

Runs the app in-process (Litestar test client) on the real PostgreSQL + Redis (SAQ worker inside),
like the integration tests. Usage (from the repository root, with the venv active)::

    python scripts/measure_notifications.py [--comments 200] [--webhook-events 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from litestar.testing import AsyncTestClient

from tests.support import services
from tests.support.factories import make_account
from tests.support.receiver import Receiver


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    return f"median {statistics.median(samples) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (n={len(samples)})"


async def comments(client, card_id: str, who, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        r = await client.post(
            f"/api/v1/cards/{card_id}/comments", json={"body": f"c{i}"}, headers=who.headers
        )
        out.append(time.perf_counter() - t)
        assert r.status_code == 201, r.text
    return out


async def main(n_comments: int, n_events: int) -> None:
    from persistence.db import upgrade
    from server.app import create_app
    from server.boards.hooks import register_change_hook, unregister_change_hook
    from server.notifications.hooks import on_board_change
    from server.settings import load_settings

    url = await asyncio.to_thread(services.create_database)
    await asyncio.to_thread(upgrade, url)
    env = {
        "DATA_DIR": tempfile.mkdtemp(),
        "SECRET_KEY": "measure-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": url,
        "REDIS_URL": services.redis_url(),
        "REDIS_PREFIX": f"measure:{uuid.uuid4().hex[:6]}",
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }
    app = create_app(load_settings(env))
    try:
        async with AsyncTestClient(app=app) as client:
            alice = await make_account(client)
            others = [await make_account(client) for _ in range(5)]
            board = (await client.post("/api/v1/boards", json={"name": "m"}, headers=alice.headers)).json()[
                "id"
            ]
            for o in others:
                await client.post(
                    f"/api/v1/boards/{board}/members", json={"user_id": o.id}, headers=alice.headers
                )
            lst = (
                await client.post(f"/api/v1/boards/{board}/lists", json={"name": "l"}, headers=alice.headers)
            ).json()
            card = (
                await client.post(
                    f"/api/v1/lists/{lst['id']}/cards",
                    json={"title": "t", "assignee_ids": [o.id for o in others]},
                    headers=alice.headers,
                )
            ).json()["id"]
            await comments(client, card, alice, 20)  # warm up
            with_hook = await comments(client, card, alice, n_comments)
            unregister_change_hook(on_board_change)
            without = await comments(client, card, alice, n_comments)
            register_change_hook(on_board_change)
            print(f"POST comment, 5 assignees notified: {_ms(with_hook)}")
            print(f"POST comment, notifications off:    {_ms(without)}")

            with Receiver() as receiver:
                await client.post(
                    f"/api/v1/boards/{board}/webhooks",
                    json={"url": receiver.url, "secret": "s" * 20, "events": ["list.created"]},
                    headers=alice.headers,
                )
                lags = []
                for i in range(n_events):
                    t = time.perf_counter()
                    await client.post(
                        f"/api/v1/boards/{board}/lists", json={"name": f"w{i}"}, headers=alice.headers
                    )
                    await receiver.wait_until(lambda r, k=i + 1: len(r.successes()) >= k)
                    lags.append(time.perf_counter() - t)
                print(f"webhook: list created -> receiver got it: {_ms(lags)}")
    finally:
        await asyncio.to_thread(services.drop_database, url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=200)
    parser.add_argument("--webhook-events", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.comments, args.webhook_events))
