"""No token reaches a log line: a real ``corkboard serve`` at INFO, sockets opened with ``?token=``."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.conftest import base_env
from tests.support.live import LiveServer
from tests.support.phx import account


async def test_socket_tokens_are_redacted_from_every_log_line(tmp_path, run_id):
    log_path = tmp_path / "server.log"
    env = base_env(tmp_path, run_id) | {"LOG_LEVEL": "INFO"}
    server = LiveServer(env, log_path=log_path).start()
    try:
        token = (await asyncio.to_thread(account, server))["access_token"]
        bad = "not-a-token-" + run_id
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(f"{server.ws_url}/socket/websocket?vsn=2.0.0&token={bad}")
        async with websockets.connect(f"{server.ws_url}/socket/websocket?vsn=2.0.0&token={token}"):
            pass
    finally:
        server.stop()
    text = log_path.read_text()
    assert "/socket/websocket?vsn=2.0.0&token=[redacted]" in text  # the lines are there, redacted
    assert token not in text
    assert bad not in text
