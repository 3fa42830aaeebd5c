"""``corkboard loadtest --json`` at a tiny size against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import base_env

ROOT = Path(__file__).resolve().parents[2]


def loadtest(url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "server", "loadtest", url, "--json", "--quiet", *args],
        cwd=str(ROOT),
        capture_output=True,
        timeout=100,
        check=False,
    )


def test_loadtest_json_report(live_server_factory, tmp_path: Path, run_id: str) -> None:
    server = live_server_factory(base_env(tmp_path, run_id))
    proc = loadtest(
        server.url,
        "--users",
        "12",
        "--accounts",
        "3",
        "--boards",
        "2",
        "--writers",
        "0.5",
        "--rate",
        "20",
        "--duration",
        "2",
        "--typing-rate",
        "10",
        "--drain",
        "10",
        "--check",
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:] + proc.stdout.decode()[-3000:]
    report = json.loads(proc.stdout)
    assert report["sockets"]["opened"] == 12
    assert report["sockets"]["joins_ok"] == 12
    assert report["mutations"] > 0
    events = report["events"]
    assert events["expected"] > 0
    assert events["lost"] == 0
    assert events["duplicated"] == 0
    assert events["out_of_order"] == 0
    assert events["delivered"] == events["expected"]
    assert report["delivery_latency_ms"]["count"] >= events["delivered"]
    assert "POST /lists/{id}/cards" in report["rest_latency_ms"]
    assert report["ephemeral"]["sent"] > 0


def test_loadtest_reports_refused_sockets(live_server_factory, tmp_path: Path, run_id: str) -> None:
    """Bad tokens: the run still ends by itself with a report that names the failure."""
    server = live_server_factory(base_env(tmp_path, run_id))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("not-a-token\n")
    proc = loadtest(server.url, "--users", "3", "--tokens-file", str(tokens), "--duration", "1")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    report = json.loads(proc.stdout)
    assert report["fatal"]
    assert report["sockets"]["opened"] == 0
    assert any(kind.startswith("http_401") for kind in report["errors"]), report["errors"]


def test_loadtest_without_its_extra_says_how_to_install_it(tmp_path: Path) -> None:
    # A directory on the path with an `aiohttp` that cannot be imported stands for an install of
    # the server alone (runtime.txt has no aiohttp).
    shadow = tmp_path / "shadow"
    (shadow / "aiohttp").mkdir(parents=True)
    (shadow / "aiohttp" / "__init__.py").write_text("raise ImportError('no aiohttp', name='aiohttp')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "server", "loadtest", "http://127.0.0.1:9", "--quiet"],
        cwd=str(ROOT),
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": f"{shadow}:{ROOT}"},
    )
    assert proc.returncode == 1
    assert b"pip install 'corkboard[loadtest]'" in proc.stderr
