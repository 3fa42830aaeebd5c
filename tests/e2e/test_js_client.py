"""The TypeScript client of clients/js against a live server: its build (tsc), its node tests, the
README's quick start run as written, and its REST types against the served OpenAPI document."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import services
from tests.support.phx import account, api
from tests.support.rest import create_board, create_card, create_list

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "clients" / "js"


def npm(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args],
        cwd=PKG,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def built() -> None:
    """``npm run build`` (tsc: type-checks and compiles) once per session, from ``npm ci``'s tree."""
    if not (PKG / "node_modules" / "typescript").exists():
        message = "clients/js/node_modules is needed (scripts/test runs npm ci)"
        if services.IN_CI:
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    r = npm("run", "build")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def server(backend_env, tmp_path_factory, built):
    from tests.support.live import LiveServer

    s = LiveServer(backend_env, log_path=tmp_path_factory.mktemp("log") / "server.log").start()
    yield s
    s.stop()


def test_node_tests_against_a_live_server(server: Any) -> None:
    r = subprocess.run(
        ["node", "--test", "test/"],
        cwd=PKG,
        env={**os.environ, "CORKBOARD_URL": server.url},
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert re.search(r"^# fail 0$", r.stdout, re.M), r.stdout[-3000:]


def quick_start() -> str:
    """The README's JavaScript code block (there is exactly one)."""
    blocks = re.findall(r"```js\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, blocks
    return blocks[0]


def read_until(proc: subprocess.Popen[str], pattern: str) -> list[str]:
    """The script's lines up to the first that matches ``pattern`` (an early one may come before presence)."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not re.fullmatch(pattern, lines[-1]):
        line = proc.stdout.readline()
        assert line, f"the quick start ended; it printed {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def test_readme_quick_start_runs_as_written(server: Any) -> None:
    user = account(server)
    token = user["access_token"]
    board = create_board(server, token)
    lst = create_list(server, token, board["id"])
    create_card(server, token, lst["id"], "one")
    # inside the package, so that `import ... from "@corkboard/client"` resolves to it (self-reference)
    script = PKG / f".quickstart-{uuid.uuid4().hex}.mjs"
    script.write_text(quick_start())
    env = {
        **os.environ,
        "CORKBOARD_URL": server.url,
        "CORKBOARD_LOGIN": user["username"],
        "CORKBOARD_PASSWORD": "correct horse battery staple",
        "BOARD_ID": board["id"],
    }
    proc = subprocess.Popen(["node", str(script)], cwd=PKG, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        name, username = board["name"], user["username"]
        seen = read_until(proc, rf"{re.escape(name)} @\d+: 1 cards; here: {username}")
        create_card(server, token, lst["id"], "two")
        seen += read_until(proc, rf"{re.escape(name)} @\d+: 2 cards; here: {username}")
        assert all(re.fullmatch(rf"{re.escape(name)} @\d+: [12] cards; here: .*", x) for x in seen), seen
        with api(server, token) as c:
            assert c.post("/auth/logout", json={"all": True}).status_code == 204
        # a render may still come first (a presence change after the last card); then the stop
        tail = read_until(proc, r"signed out: revoked")
        assert all(re.fullmatch(rf"{re.escape(name)} @\d+: 2 cards; here: .*", x) for x in tail[:-1]), tail
        assert proc.wait(timeout=30) == 0  # nothing left running: it ends by itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        script.unlink()


def test_committed_rest_types_match_the_served_openapi_document(server: Any) -> None:
    r = npm("run", "gen:types", "--", server.url, "--check", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
