"""The REST side of a load run: timed requests by route, errors by kind, account sign-up."""

from __future__ import annotations

import time
import uuid
from array import array
from collections import Counter
from typing import Any

import aiohttp
import msgspec


class RestError(Exception):
    def __init__(self, kind: str, status: int = 0, body: str = "") -> None:
        super().__init__(f"{kind} {body[:200]}".strip())
        self.kind = kind
        self.status = status


class Account(msgspec.Struct):
    token: str
    user_id: str = ""
    username: str = ""


class Rest:
    """An HTTP client that times every request under its route template (``POST /lists/{id}/cards``).

    aiohttp, not httpx: measured on the 2-core machine against ``/health`` at 400 req/s with 128
    connections, httpx reached 21 req/s (p50 1 s; its pool's bookkeeping grows with the number of
    connections and queued requests) and 314 req/s at 16 connections with the client's core at
    100 %; aiohttp served all 400 req/s at p50 0.9 ms with 24 % of a core. A load client that is
    slower than the server measures itself (bench/RESULTS.md, "rest").

    Args:
        url: The server's base URL; ``/api/v1`` is added to API paths.
        concurrency: Connections at most; more requests wait for one, and that wait counts in their
            latency (an open-loop client must not hide its own queue).
    """

    def __init__(self, url: str, *, concurrency: int = 64, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/")
        if self.base.startswith("ws"):
            self.base = "http" + self.base[2:]
        self.concurrency = concurrency
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None  # made on first use, inside the loop
        self.timings: dict[str, array[float]] = {}
        self.errors: Counter[str] = Counter()
        self.ok = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        route: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        expect: tuple[int, ...] = (200, 201, 204),
    ) -> Any:
        """One timed request; returns the decoded JSON body, raises :class:`RestError` otherwise."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = None
        if json is not None:
            body = msgspec.json.encode(json)
            headers["Content-Type"] = "application/json"
        name = f"{method} {route}"
        start = time.perf_counter()
        try:
            async with self._client().request(
                method, self.base + "/api/v1" + path, data=body, headers=headers
            ) as response:
                status = response.status
                content = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            kind = f"http_{type(exc).__name__}"
            self.errors[kind] += 1
            raise RestError(kind) from exc
        elapsed = time.perf_counter() - start
        self.timings.setdefault(name, array("d")).append(elapsed)
        if status not in expect:
            kind = f"http_{status}:{name}"
            self.errors[kind] += 1
            raise RestError(kind, status, content.decode("utf-8", "replace"))
        self.ok += 1
        return msgspec.json.decode(content) if content else None

    async def sign_up(self, prefix: str, index: int, password: str) -> Account:
        """Register ``{prefix}{index}`` and log in: an access token and the user's id."""
        username = f"{prefix}{index}"
        user = await self.call(
            "POST",
            "/auth/register",
            "/auth/register",
            json={
                "email": f"{username}@loadtest.invalid",
                "username": username,
                "password": password,
                "display_name": f"Load {index}",
            },
            expect=(201,),
        )
        tokens = await self.call(
            "POST",
            "/auth/login",
            "/auth/login",
            json={"login": username, "password": password},
            expect=(200,),
        )
        return Account(token=tokens["access_token"], user_id=str(user["id"]), username=username)

    async def whoami(self, token: str) -> Account:
        me = await self.call("GET", "/auth/me", "/auth/me", token=token, expect=(200,))
        return Account(token=token, user_id=str(me["id"]), username=str(me.get("username", "")))


def run_prefix() -> str:
    return "lt" + uuid.uuid4().hex[:8] + "u"
