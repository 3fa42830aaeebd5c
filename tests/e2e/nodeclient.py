"""Run ``board_client.mjs`` (the official phoenix client) as a subprocess and read its report lines."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import services

HERE = Path(__file__).resolve().parent


def require_node() -> str:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "phoenix").exists():
        message = "node and tests/e2e/node_modules are needed (scripts/test runs npm ci)"
        if services.IN_CI:
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return node


class NodeClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.consumed: set[int] = set()

    @classmethod
    async def start(
        cls, server: Any, token: str, topic: str, *, last_seq: int | None = None, auth: str = "param"
    ) -> NodeClient:
        env = {
            **os.environ,
            "CB_SOCKET_URL": server.ws_url + "/socket",
            "CB_TOKEN": token,
            "CB_TOPIC": topic,
            "CB_AUTH": auth,
        }
        if last_seq is not None:
            env["CB_LAST_SEQ"] = str(last_seq)
        proc = await asyncio.create_subprocess_exec(
            require_node(),
            str(HERE / "board_client.mjs"),
            cwd=str(HERE),
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    def mark(self) -> int:
        """A position in the report: ``expect(..., after=mark)`` ignores earlier lines."""
        return len(self.lines)

    async def expect(self, predicate: Any, timeout: float = 15, after: int = 0) -> dict[str, Any]:
        """The first line from ``after`` on, seen before or new, that matches ``predicate`` (consumed)."""
        for i in range(after, len(self.lines)):
            if i not in self.consumed and predicate(self.lines[i]):
                self.consumed.add(i)
                return self.lines[i]

        async def read() -> dict[str, Any]:
            assert self.proc.stdout is not None
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"node client exited; saw {self.lines}")
                line = json.loads(raw)
                self.lines.append(line)
                if predicate(line):
                    self.consumed.add(len(self.lines) - 1)
                    return line  # type: ignore[no-any-return]

        try:
            return await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            raise AssertionError(f"node client: nothing matched in {timeout}s; saw {self.lines}") from None

    def seqs(self) -> list[int]:
        return [line["seq"] for line in self.lines if line["type"] == "event"]

    async def command(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((cmd + "\n").encode())
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.command("exit")
                await asyncio.wait_for(self.proc.wait(), 5)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()
