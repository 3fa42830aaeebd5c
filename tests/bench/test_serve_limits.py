"""``corkboard serve`` lifts its own file-descriptor limit (one descriptor per socket)."""

from __future__ import annotations

import resource
from pathlib import Path

from server.serving import raise_nofile_limit
from tests.conftest import base_env


def test_raise_nofile_limit_reaches_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        assert raise_nofile_limit() == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_serve_runs_with_the_hard_limit(live_server_factory, tmp_path: Path, run_id: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(512, hard), hard))  # inherited by the server
    try:
        server = live_server_factory(base_env(tmp_path, run_id))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
    assert line.split()[3] == str(hard), line
