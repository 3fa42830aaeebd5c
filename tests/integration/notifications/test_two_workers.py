"""Two real workers on the real Redis: the server's embedded worker and a ``corkboard worker``
process race on the same reminder jobs; each reminder is still created and mailed once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.notifications import boards_http as b
from tests.integration.notifications.conftest import in_app
from tests.support.factories import make_account
from tests.support.live import ROOT

JOBS = 12


@pytest.fixture
def worker_process(notify_env, napp, tmp_path):
    if "REDIS_URL" not in notify_env:
        pytest.skip("two workers share a queue on Redis: PostgreSQL + Redis backend only")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "worker", "--concurrency", "10"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **notify_env},
        cwd=str(ROOT),
        stdout=log,
        stderr=log,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    assert proc.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]


async def _workers_seen(queue) -> int:
    info = await queue.info()
    return len(info["workers"])


async def test_a_reminder_is_sent_once_by_two_workers(nclient, napp, jobs, mailbox, worker_process):
    alice, bob = await make_account(nclient), await make_account(nclient)
    board_id = await b.board(nclient, alice)
    await b.add_member(nclient, board_id, alice, bob)
    await nclient.put(
        "/api/v1/notifications/preferences",
        json={"preferences": {"card.assigned": "in_app"}},
        headers=bob.headers,
    )
    list_id = await b.a_list(nclient, board_id, alice)
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    card = await b.card(nclient, list_id, alice, due_at=soon, assignee_ids=[bob.id])

    for _ in range(300):  # the separate worker registers itself in Redis once it runs
        if await in_app(nclient, _workers_seen, jobs.queue) >= 2:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the corkboard worker process did not come up")

    async def race() -> set[str | None]:
        keys = [f"reminder-race:{card['id']}:{i}" for i in range(JOBS)]
        for key in keys:
            assert await jobs.enqueue("send_reminders", key=key)
        done: list = []
        for _ in range(600):
            done = [await jobs.queue.job(key) for key in keys]
            if all(j is not None and j.status == "complete" for j in done):
                break
            await asyncio.sleep(0.05)
        assert all(j.status == "complete" for j in done), [j.status for j in done]
        assert sum(j.result for j in done) == 1  # exactly one job created the reminder
        return {j.worker_id for j in done}

    workers = await in_app(nclient, race)
    assert len(workers) == 2, "both workers should have taken some of the jobs"
    reminders = [n for n in await b.notifications(nclient, bob) if n["kind"] == "card.due"]
    assert len(reminders) == 1
    [mail] = await mailbox.wait_for(bob.email)
    assert "is due" in mail.subject
    await asyncio.sleep(0.5)
    assert len(mailbox.to(bob.email)) == 1
