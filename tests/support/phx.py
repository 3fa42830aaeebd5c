"""A tiny Phoenix V2 client on ``websockets`` for integration tests (the e2e tests use phoenix.js)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx
import websockets


class Phx:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.refs = itertools.count(1)
        self.inbox: list[list[Any]] = []

    @classmethod
    async def connect(cls, ws_url: str, token: str, **kwargs: Any) -> Phx:
        ws = await websockets.connect(
            f"{ws_url}/socket/websocket?vsn=2.0.0&token={token}", open_timeout=10, **kwargs
        )
        return cls(ws)

    async def push(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        ref = str(next(self.refs))
        await self.ws.send(json.dumps([join_ref, ref, topic, event, payload]))
        return ref

    async def recv(self, timeout: float = 10) -> list[Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(raw)

    async def expect(self, predicate: Any, timeout: float = 10) -> list[Any]:
        """The first frame matching ``predicate`` (earlier ones are kept in ``inbox``)."""
        for i, frame in enumerate(self.inbox):
            if predicate(frame):
                return self.inbox.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if predicate(frame):
                return frame
            self.inbox.append(frame)

    async def reply(self, ref: str, timeout: float = 10) -> dict[str, Any]:
        frame = await self.expect(lambda f: f[3] == "phx_reply" and f[1] == ref, timeout)
        return frame[4]

    async def join(self, topic: str, payload: Any = None) -> tuple[str, dict[str, Any]]:
        ref = str(next(self.refs))
        await self.ws.send(json.dumps([ref, ref, topic, "phx_join", payload or {}]))
        return ref, await self.reply(ref)

    async def event(self, topic: str, name: str, timeout: float = 10) -> list[Any]:
        return await self.expect(lambda f: f[2] == topic and f[3] == name, timeout)

    async def close(self) -> None:
        await self.ws.close()


def api(server: Any, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=10)


def account(server: Any) -> dict[str, Any]:
    """Register and log in a fresh user over HTTP; returns the user with its tokens."""
    import uuid

    name = "u" + uuid.uuid4().hex[:10]
    with api(server) as c:
        r = c.post(
            "/auth/register",
            json={
                "email": f"{name}@example.test",
                "username": name,
                "password": "correct horse battery staple",
            },
        )
        assert r.status_code == 201, r.text
        user = r.json()
        r = c.post("/auth/login", json={"login": name, "password": "correct horse battery staple"})
        assert r.status_code == 200, r.text
        return {**user, **r.json()}


async def close_code(phx: Phx, timeout: float = 20) -> int | None:
    """Read until the server closes the socket; the close code it sent."""
    try:
        while True:
            await phx.recv(timeout)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


class StalledReader:
    """A WebSocket client on a plain socket with a small receive buffer that reads nothing until
    told to (``websockets``' own client keeps reading into memory, so it cannot stall a server)."""

    def __init__(self, server: Any, token: str) -> None:
        import socket

        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.raw = socket.socket()
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # no autotuning to 32 MB
        self.raw.settimeout(10)
        self.raw.connect(("127.0.0.1", server.port))
        self.proto = ClientProtocol(
            parse_uri(f"{server.ws_url}/socket/websocket?vsn=2.0.0&token={token}"), max_size=None
        )
        self.proto.send_request(self.proto.connect())
        self._flush()
        while not self.proto.handshake_exc and self.proto.state.name == "CONNECTING":
            self.proto.receive_data(self.raw.recv(65536))
        self.frames: list[list[Any]] = []

    def _flush(self) -> None:
        self.raw.sendall(b"".join(self.proto.data_to_send()))

    def send(self, frame: list[Any]) -> None:
        self.proto.send_text(json.dumps(frame).encode())
        self._flush()

    def read_some(self) -> None:
        self.proto.receive_data(self.raw.recv(1 << 20))
        self.frames += [
            json.loads(e.data)
            for e in self.proto.events_received()
            if getattr(e, "opcode", None) is not None and e.opcode.name == "TEXT"
        ]

    def read_until_closed(self) -> int | None:
        """Resume reading: everything queued, then the server's close frame; its code."""
        while self.proto.close_rcvd is None:
            data = self.raw.recv(1 << 20)
            if not data:
                break
            self.proto.receive_data(data)
            self.proto.events_received()
        self.raw.close()
        return self.proto.close_rcvd.code if self.proto.close_rcvd else None
