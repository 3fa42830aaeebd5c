"""The REST side of a load run: timed requests by route, errors by kind, account sign-up."""

from __future__ import annotations

import asyncio
import time
import uuid
from array import array
from collections import Counter
from typing import Any

import httpx
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
    """An httpx client that times every request under its route template (``POST /lists/{id}/cards``).

    Args:
        url: The server's base URL; ``/api/v1`` is added to API paths.
        concurrency: Connection pool size.
    """

    def __init__(self, url: str, *, concurrency: int = 64, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/")
        if self.base.startswith("ws"):
            self.base = "http" + self.base[2:]
        self.client = httpx.AsyncClient(
            base_url=self.base,
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        # At most ``concurrency`` requests inside httpx at once: httpcore's pool matches every queued
        # request against every connection on each step (quadratic), so a few thousand requests
        # queued there took the load client's whole core and throttled the run to ~30 req/s.
        # Waiting here is O(1), and the wait still counts in the request's latency (open loop).
        self._slots = asyncio.Semaphore(concurrency)
        self.timings: dict[str, array[float]] = {}
        self.errors: Counter[str] = Counter()
        self.ok = 0

    async def close(self) -> None:
        await self.client.aclose()

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
        headers = {"Authorization": f"Bearer {token}"} if token else None
        name = f"{method} {route}"
        start = time.perf_counter()
        try:
            async with self._slots:
                response = await self.client.request(method, "/api/v1" + path, json=json, headers=headers)
        except httpx.HTTPError as exc:
            kind = f"http_{type(exc).__name__}"
            self.errors[kind] += 1
            raise RestError(kind) from exc
        elapsed = time.perf_counter() - start
        self.timings.setdefault(name, array("d")).append(elapsed)
        if response.status_code not in expect:
            kind = f"http_{response.status_code}:{name}"
            self.errors[kind] += 1
            raise RestError(kind, response.status_code, response.text)
        self.ok += 1
        return msgspec.json.decode(response.content) if response.content else None

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
