"""The socket layer's CPU per delivery alone: ``Hub.deliver`` timed inside a uvicorn server process.

``python -m bench fanout`` is noisy as a measure of the fan-out itself on a shared machine,
because each event is a REST request whose cost (several ms of CPU) varies between runs more than
the fan-out does. Here the server is uvicorn with the default ``WS_IMPL=fastpath`` protocol and the
real :class:`~channels.hub.Hub` and ``serve_socket`` behind a bare ASGI app (in-memory auth, access
and event log, so no database); N real Phoenix sockets from the load client join one board; then
the server calls ``Hub.deliver`` itself for each event (or ``--per-pass K`` events at a time, as
when events pile up during a pass) and adds up its own CPU time (``time.process_time``) around
those calls and the fan-out's passes only: the encode, the loop over the members and one
``transport.write`` per socket and pass, system call included.

``python -m bench.deliver --sockets 2000 --events 100 [--per-pass K] [--tree DIR]`` prints µs of
server CPU per delivery. ``--tree`` runs the server from another checkout (e.g. ``git archive main | tar -x -C
DIR``) with this client, to compare two versions of the socket layer on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOARD = uuid.UUID(int=1)


async def _serve(port: int, sockets: int, events: int, per_pass: int) -> None:
    import msgspec
    import uvicorn

    import server.app  # the import order of the real app (channels.hub alone is circular)
    from channels import fastpath
    from channels.hub import Hub
    from channels.socket import serve_socket
    from channels.topics import Grant, Identity
    from persistence.events import Event
    from server.settings import Settings

    class Auth:
        async def authenticate(self, token: str) -> Identity:
            return Identity(uuid.uuid4(), uuid.uuid4())

        async def revoked(self, credential_ids: set[uuid.UUID]) -> set[uuid.UUID]:
            return set()

    class Access:
        async def board_for(self, topic: Any, user_id: uuid.UUID) -> Grant:
            return Grant(BOARD, "member")

    class Log:
        async def events_after(self, board_id: uuid.UUID, after_seq: int, limit: int) -> list[Event]:
            return []

        async def current_seq(self, board_id: uuid.UUID) -> int:
            return 0

        async def board_snapshot(self, board_id: uuid.UUID) -> tuple[int, bytes]:
            return 0, b"{}"

    hub = Hub(Settings(secret_key="k" * 32), authenticator=Auth(), access=Access(), eventlog=Log())

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await hub.start()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await hub.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await serve_socket(hub, scope, receive, send)

    config = uvicorn.Config(
        app,
        port=port,
        ws=fastpath.IMPORT_PATH,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        log_level="warning",
        backlog=4096,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    topic = f"board:{BOARD}"
    while len(hub.topics.get(topic, ())) < sockets:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    total = 0.0
    batch: list[Event] = []
    for i in range(events):
        data = json.dumps({"id": "c", "title": "x" * 200, "n": i}).encode()
        event = Event(
            seq=i + 1,
            type="card.updated",
            board_id=BOARD,
            actor_id=None,
            at=datetime.now(UTC),
            data=msgspec.Raw(data),
        )
        batch.append(event)
        if len(batch) < per_pass:
            continue
        before = time.process_time()
        hub.deliver(BOARD, batch)
        if hasattr(hub, "fanout"):  # the whole pass now, not a slice per loop turn (older trees: none)
            hub.fanout.drain()
        total += time.process_time() - before
        batch = []
        await asyncio.sleep(0.02 * per_pass)  # let the client read
    print(json.dumps({"us_per_delivery": round(total / (events * sockets) * 1e6, 2)}), flush=True)
    server.should_exit = True
    await task


async def _client(tree: Path, sockets: int, events: int, per_pass: int) -> dict[str, Any]:
    from bench.procs import CLIENT_CPU, SERVER_CPU, free_port, pin_self, raise_nofile
    from server.loadtest.phx import PhxPool

    pin_self(CLIENT_CPU)
    port = free_port()
    # The server imports channels/ and server/ from ``tree`` (cwd and PYTHONPATH), this file by path.
    argv = ["deliver", "serve", str(port), str(sockets), str(events), str(per_pass)]
    run = f"import runpy, sys; sys.argv = {argv!r}; "
    run += f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')"
    cmd = [sys.executable, "-c", run]
    if os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        cmd = ["taskset", "-c", str(SERVER_CPU), *cmd]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(cmd, env=env, cwd=str(tree), stdout=subprocess.PIPE, preexec_fn=raise_nofile)
    try:
        for _ in range(300):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        pool = PhxPool(f"http://127.0.0.1:{port}")
        sem = asyncio.Semaphore(200)

        async def one() -> None:
            async with sem:
                sock = await pool.connect("token", timeout=30)
                await sock.join(f"board:{BOARD}", timeout=30)

        await asyncio.gather(*(one() for _ in range(sockets)))
        assert proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        pool.close_all()
        result: dict[str, Any] = json.loads(line)
        return {"tree": str(tree), "sockets": sockets, "events": events, "per_pass": per_pass, **result}
    finally:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "serve":
        asyncio.run(_serve(int(args[1]), int(args[2]), int(args[3]), int(args[4])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.deliver", description=__doc__)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument(
        "--per-pass", type=int, default=1, help="events handed to the hub at once (one write per socket)"
    )
    parser.add_argument("--tree", type=Path, default=ROOT, help="run the server from this checkout")
    ns = parser.parse_args(args)
    from bench.procs import raise_nofile

    raise_nofile()
    print(json.dumps(asyncio.run(_client(ns.tree.resolve(), ns.sockets, ns.events, ns.per_pass))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
