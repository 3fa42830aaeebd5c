"""Convergence under churn, at a small size (``python -m bench churn`` is the full size).

Two real ``corkboard serve`` instances on this session's PostgreSQL database and Redis, writers on
two boards making every kind of change, socket clients folding the events, sockets dropped and one
instance killed and restarted: every client must end with exactly the board the database holds
(bench/churn.py says what is checked). With ``CI=true`` a missing PostgreSQL or Redis fails.
"""

from __future__ import annotations

import random

import pytest

from bench.churn import CHEAP_HASHING, ChurnConfig, run_churn, summary_lines
from tests.conftest import base_env

pytestmark = [pytest.mark.churn, pytest.mark.timeout(300)]


async def test_every_client_converges_to_the_database(pg_url, redis_url, tmp_path, run_id):
    env = {
        **base_env(tmp_path, run_id),
        **CHEAP_HASHING,
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "REPLAY_WINDOW": "10",  # the two clients kept away for a while come back to a resync
    }
    seed = random.randrange(1 << 30)
    config = ChurnConfig(changes=120, clients=8, boards=2, writers=2, pool=3, seed=seed)
    out = await run_churn(env, config)
    report = "\n".join(summary_lines(out))
    print(report)
    assert out["ok"], report
    assert out["changes"] >= 120
    assert out["drops"] > 0
    assert out["socket_sessions"] > out["clients"]  # every dropped or killed socket came back
    assert any("SIGKILL" in t for t in out["timeline"]), report
    assert out["resyncs"] >= 1, report
