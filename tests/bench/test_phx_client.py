"""The load client against a plain websockets server: frames, fragments, pings, close codes."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve

from server.loadtest.phx import PhxError, PhxPool


def push(seq: int) -> str:
    body = {"seq": seq, "type": "card.updated", "at": "2026-11-21T10:00:00.000001Z", "data": {"x": "y" * 200}}
    return msgspec.json.encode([None, None, "board:b", "card.updated", body]).decode()


async def handler(ws: ServerConnection) -> None:
    async for message in ws:
        join_ref, ref, topic, event, payload = msgspec.json.decode(message)
        if topic == "board:nope":
            await ws.send(
                msgspec.json.encode(
                    [
                        join_ref,
                        ref,
                        topic,
                        "phx_reply",
                        {"status": "error", "response": {"reason": "unauthorized"}},
                    ]
                ).decode()
            )
            continue
        await ws.send(
            msgspec.json.encode(
                [join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {"seq": 3}}]
            ).decode()
        )
        if event == "phx_join" and payload.get("last_seq") == 1:
            for seq in (2, 3):  # replay right after the reply
                await ws.send(push(seq))
        if event == "go":
            await ws.send(push(4))
            await ws.ping(b"p")
            await ws.send(push(5))
            await ws.send(iter(push(6)[i : i + 10] for i in range(0, len(push(6)), 10)))  # fragmented
            await ws.send(push(5))  # a duplicate
            await ws.send(push(7))
            await ws.close(1012, "restart")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fast", [True, False])
async def test_client_frames_fragments_ping_and_close(fast: bool) -> None:
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        pool = PhxPool(f"ws://127.0.0.1:{port}/socket/websocket")
        pool.fast_frames = fast
        sock = await pool.connect("tok")
        reply = await sock.join("board:b", {})
        assert reply == {"seq": 3}
        with pytest.raises(PhxError) as err:
            await sock.join("board:nope", {})
        assert err.value.reason == "unauthorized"
        await sock.call("board:b", "go", {})
        for _ in range(200):
            if sock.is_closed:
                break
            await asyncio.sleep(0.01)
        assert sock.is_closed
        sub = sock.subs["board:b"]
        assert sub.base == 3
        assert sub.delivered == 4  # 4, 5, 6 (fragmented, after a ping), 7
        assert pool.tracker.dups == 1
        assert pool.close_codes[1012] == 1
        assert len(pool.tracker.latencies) == 4


@pytest.mark.timeout(30)
async def test_join_with_last_seq_counts_the_replay() -> None:
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        pool = PhxPool(f"http://127.0.0.1:{port}")
        sock = await pool.connect("tok")
        await sock.join("board:b", {"last_seq": 1})
        for _ in range(100):
            if pool.tracker.unique == 2:
                break
            await asyncio.sleep(0.01)
        assert sock.subs["board:b"].base == 1
        assert pool.tracker.unique == 2
        assert pool.tracker.unexpected == 0
        sock.close()
