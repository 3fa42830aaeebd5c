"""Every bench scenario at a tiny size, run the way an operator runs it (``python -m bench ...``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import services

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str, timeout: float = 90) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--no-pin"],
        cwd=str(ROOT),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout)


def assert_complete(phases: list[dict[str, Any]]) -> None:
    for p in phases:
        assert p["expected"] > 0, p
        assert p["unique"] == p["expected"], p
        assert p["lost"] == 0, p
        assert p["duplicated"] == 0, p


def test_baseline_tiny() -> None:
    out = bench("baseline", "--sockets", "20", "--events", "10", "--rate", "200")
    assert out["sockets"] == 20
    assert_complete(out["phases"])
    assert out["machine"]["cpus"]


def test_fanout_tiny() -> None:
    out = bench("fanout", "--sockets", "20", "--events", "10", "--rate", "100")
    assert out["corkboard"]["sockets"] == 20
    assert out["baseline"]["sockets"] == 20
    assert_complete(out["corkboard"]["phases"])
    assert_complete(out["baseline"]["phases"])
    assert all(p["events"] == 10 for p in out["corkboard"]["phases"])
    for p in out["corkboard"]["phases"]:
        assert 0 <= p["server_system_s"] <= p["server_cpu_s"], p
        # read from the server's /metrics: every event went out, at most every event in one write
        assert 1 <= p["events_per_write"] <= 10, p


def test_fanout_on_postgresql_tiny() -> None:
    services.require_postgres()
    services.require_redis()
    out = bench("fanout", "--database", "postgresql", "--no-baseline", "--sockets", "20", "--events", "10")
    assert out["corkboard"]["database"] == "postgresql"
    assert out["corkboard"]["sockets"] == 20
    assert not out["corkboard"]["rest_errors"], out["corkboard"]["rest_errors"]
    assert_complete(out["corkboard"]["phases"])


def test_idle_tiny() -> None:
    out = bench("idle", "--sockets", "30", "--boards", "3", "--idle-seconds", "1")
    assert out["sockets"] == 30
    assert out["still_open"] == 30


def test_idle_memory_snapshots_tiny(tmp_path: Path) -> None:
    snaps = tmp_path / "tm"
    out = bench(
        "idle", "--sockets", "10", "--boards", "2", "--idle-seconds", "1", "--tracemalloc", str(snaps)
    )
    assert out["sockets"] == 10
    assert out["idle_cpu_user_seconds"] + out["idle_cpu_system_seconds"] == pytest.approx(
        out["idle_cpu_seconds"], abs=0.011
    )
    assert sorted(p.name for p in snaps.glob("*.snap")) == ["0.snap", "1.snap"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.memory",
            str(snaps / "0.snap"),
            str(snaps / "1.snap"),
            "--per",
            "10",
            "--top",
            "300",
        ],
        cwd=str(ROOT),
        capture_output=True,
        timeout=60,
        check=True,
    )
    report = proc.stdout.decode()
    assert "B per socket" in report
    assert "FastPathProtocol" in report  # one per socket among the live objects that grew


def test_deliver_tiny() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.deliver", "--sockets", "10", "--events", "3"],
        cwd=str(ROOT),
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = json.loads(proc.stdout)
    assert out["sockets"] == 10
    assert out["us_per_delivery"] > 0


def test_replay_tiny() -> None:
    out = bench("replay", "--behind", "30", "--repeat", "2")
    assert out["behind"] == 30
    assert len(out["catch_up_ms"]) == 2
    assert out["duplicated"] == 0
    assert out["out_of_order"] == 0


def test_rest_tiny() -> None:
    services.require_postgres()
    services.require_redis()
    out = bench("rest", "--rate", "30", "--seconds", "1", "--workers", "2")
    assert out["requests"] == 30
    assert not out["errors"], out["errors"]
    assert set(out["routes_ms"]) == {"POST /lists/{id}/cards", "POST /cards/{id}/move", "GET /cards/{id}"}


def test_rest_ab_tiny() -> None:
    """This tree against its own commit (a temporary git worktree), both serving at once."""
    services.require_postgres()
    services.require_redis()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    out = bench("rest-ab", "--against", "HEAD", "--requests", "4", "--rounds", "2", timeout=180)
    assert out["against_tree"] == head
    assert out["this"].startswith(head)
    assert not out["errors"], out["errors"]
    assert set(out["routes"]) == {"POST /lists/{id}/cards", "POST /cards/{id}/move", "GET /cards/{id}"}
    spent = []
    for route in out["routes"].values():
        assert len(route["this_cpu_ms_per_request"]) == len(route["against_cpu_ms_per_request"]) == 2
        spent += route["this_cpu_ms_per_request"] + route["against_cpu_ms_per_request"]
        # /proc counts CPU in clock ticks (10 ms): 4 requests may read as none in a round, which
        # then has no ratio
        assert route["ratio_median"] is None or route["ratio_median"] > 0
        pairs = zip(route["this_cpu_ms_per_request"], route["against_cpu_ms_per_request"], strict=True)
        assert len(route["ratio_per_round"]) == sum(t > 0 and a > 0 for t, a in pairs)
    assert all(v >= 0 for v in spent)
    assert sum(spent) > 0
    worktrees = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert "corkboard-ab-" not in worktrees  # removed again


def test_cluster_tiny() -> None:
    services.require_postgres()
    services.require_redis()
    out = bench("cluster", "--sockets", "20", "--events", "10", "--rate", "100")
    assert out["events"] == 10
    assert out["lost"] == 0
    assert out["duplicated"] == 0
    assert out["same_instance_ms"]["count"] == 10 * 10
    assert out["cross_instance_ms"]["count"] == 10 * 10


def test_board_get_tiny() -> None:
    """A small board, this tree beside itself (a checkout given by path): plain, gzip, revalidated."""
    services.require_postgres()
    services.require_redis()
    out = bench("board-get", "--cards", "12", "--requests", "3", "--against", str(ROOT), timeout=180)
    assert out["cards"] == 12
    assert set(out["results"]) == {"this", "against"}
    for side in out["results"].values():
        assert side["identity"]["statuses"] == [200]
        assert side["gzip"]["statuses"] == [200]
        assert side["revalidate"]["statuses"] == [304]
        assert 0 < side["gzip"]["body_bytes"] < side["identity"]["body_bytes"] / 2
        assert side["revalidate"]["body_bytes"] == 0
        for way in side.values():
            assert 0 < way["latency_ms"]["p50"] <= way["latency_ms"]["p95"]
            assert way["server_cpu_ms_per_request"] >= 0
    levels = out["gzip_levels"]
    assert set(levels) == {"1", "6", "9"}
    assert levels["9"]["bytes"] <= levels["1"]["bytes"] < out["results"]["this"]["identity"]["body_bytes"]


@pytest.mark.parametrize(
    "scenario", ["fanout", "idle", "rest", "replay", "cluster", "baseline", "board-get", "churn"]
)
def test_every_scenario_has_a_command(scenario: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", scenario, "--help"],
        cwd=str(ROOT),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0
    assert b"--out" in proc.stdout
