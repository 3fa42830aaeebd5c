"""The baseline: a bare ``websockets`` server that ``websockets.broadcast()``s one pre-encoded frame.

It speaks just enough Phoenix V2 for the load client (join, heartbeat, a ``bench`` control
topic) so the same client measures it and Corkboard in the same run. Control push
``["1","2","bench","fire",{"events":N,"rate":R}]`` broadcasts N ``card.updated``-shaped events to
every socket joined to ``TOPIC`` at R per second (0: as fast as possible) and replies when done.

Run: ``python -m bench.baseline_server PORT``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import websockets
from websockets.asyncio.server import ServerConnection, serve

from persistence.boards.shapes import CardOut

BOARD = "00000000-0000-4000-8000-000000000001"
TOPIC = f"board:{BOARD}"  # as long as a real board topic
ACTOR = "00000000-0000-4000-8000-000000000004"
# The card as Corkboard sends it in ``card.updated`` (its own response shape, every field, values
# of the same length as the bench's), so both servers put the same bytes on every socket and the
# comparison measures the servers, not the size of their frames.
_AT = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
DATA = msgspec.json.encode(
    CardOut(
        id=UUID("00000000-0000-4000-8000-000000000002"),
        board_id=UUID(BOARD),
        list_id=UUID("00000000-0000-4000-8000-000000000003"),
        title="Update 100",
        description="",
        position="a0",
        due_at=None,
        archived=False,
        assignee_ids=[],
        label_ids=[],
        created_by=UUID(ACTOR),
        version=100,
        created_at=_AT,
        updated_at=_AT,
    )
)

joined: set[ServerConnection] = set()
seq = 0


def _frame(n: int) -> str:
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return (
        b'[null,null,"%s","card.updated",{"seq":%d,"type":"card.updated","board_id":"%s",'
        b'"actor_id":"%s","at":"%s","data":%s}]'
        % (TOPIC.encode(), n, BOARD.encode(), ACTOR.encode(), at.encode(), DATA)
    ).decode()


async def fire(events: int, rate: float) -> dict[str, Any]:
    global seq
    start = time.time()
    interval = 1.0 / rate if rate > 0 else 0.0
    for i in range(events):
        if interval:
            delay = start + i * interval - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        seq += 1
        websockets.broadcast(joined, _frame(seq))
        if not interval:
            await asyncio.sleep(0)
    return {"first_at": start, "last_at": time.time(), "seq": seq, "sockets": len(joined)}


async def handler(ws: ServerConnection) -> None:
    try:
        async for message in ws:
            join_ref, ref, topic, event, payload = msgspec.json.decode(message)
            response: dict[str, Any] = {}
            if event == "phx_join" and topic == TOPIC:
                joined.add(ws)
                response = {"seq": seq, "resync": False}
            elif event == "phx_leave":
                joined.discard(ws)
            elif event == "fire":
                response = await fire(int(payload["events"]), float(payload.get("rate", 0)))
            await ws.send(
                msgspec.json.encode(
                    [join_ref, ref, topic, "phx_reply", {"status": "ok", "response": response}]
                ).decode()
            )
    finally:
        joined.discard(ws)


async def main(port: int) -> None:
    async with serve(
        handler, "127.0.0.1", port, ping_interval=None, compression=None, backlog=4096, max_queue=None
    ):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main(int(sys.argv[1])))
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
