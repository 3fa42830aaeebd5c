"""Rate limits: strict on login, register, forgot and reset; generous everywhere else.

Counted per minute with a sliding-window estimate (the previous minute's count, weighted by how
much of it still overlaps the last 60 s, plus the current minute's), in Redis when REDIS_URL is set
so every instance shares the count, in memory otherwise.

Why not Litestar's ``RateLimitMiddleware`` (used until the REST benchmark): it keeps a list of
timestamps per caller and reads it, then writes it back, for each limiter on every request: two
Redis round trips and a JSON document up to the limit's size each time, about a tenth of a cheap
request's CPU; and the read-then-write is guarded by a per-process lock only, so instances racing
on one key could each let a request through. Here a request costs one pipelined round trip
(``INCR`` + ``EXPIRE`` + ``GET``), and ``INCR`` is atomic across instances. A refused request is
not counted (it is taken back with ``DECR``), so a caller who waits ``Retry-After`` gets through.

Redis unreachable: requests go through uncounted (logged), like the other guards (server/stores.py).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis

from server.auth.deps import parse_bearer
from server.auth.tokens import PAT_PREFIX, decode_access_token
from server.settings import Settings
from server.stores import STORE_ERRORS

log = structlog.get_logger("corkboard.ratelimit")

WINDOW = 60  # seconds
STRICT_PATHS = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/auth/register",
        "/api/v1/auth/password/forgot",
        "/api/v1/auth/password/reset",
    }
)
UNLIMITED_PREFIXES = ("/health", "/metrics", "/schema", "/socket")


class Counter(Protocol):
    async def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one request in ``window``: ``(count in window, count in window - 1)``."""

    async def undo(self, key: str, window: int) -> None:
        """Take back the last :meth:`hit` (a refused request is not counted)."""


class RedisCounter:
    """Counts in Redis: one pipelined round trip per request, atomic across instances."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:rl:"

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        current = f"{self.prefix}{key}:{window}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(current)
            pipe.expire(current, 2 * WINDOW)
            pipe.get(f"{self.prefix}{key}:{window - 1}")
            count, _, previous = await pipe.execute()
        return int(count), int(previous or 0)

    async def undo(self, key: str, window: int) -> None:
        await self.redis.decr(f"{self.prefix}{key}:{window}")


class MemoryCounter:
    """Counts in this process (the embedded default: one process)."""

    def __init__(self) -> None:
        self.windows: dict[int, dict[str, int]] = {}

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        if window not in self.windows:
            for old in [w for w in self.windows if w < window - 1]:
                del self.windows[old]
            self.windows[window] = {}
        counts = self.windows[window]
        counts[key] = counts.get(key, 0) + 1
        return counts[key], self.windows.get(window - 1, {}).get(key, 0)

    async def undo(self, key: str, window: int) -> None:
        counts = self.windows.get(window)
        if counts and counts.get(key, 0) > 0:
            counts[key] -= 1


@dataclass(frozen=True, slots=True)
class Limit:
    """``per_minute`` requests per caller (as ``identify`` names it) on the paths ``applies`` to."""

    name: str
    per_minute: int
    identify: Callable[[Scope], str]
    applies: Callable[[str], bool]


def estimate(count: int, previous: int, elapsed: float) -> float:
    """Requests in the last ``WINDOW`` seconds, assuming the previous window's were spread evenly."""
    return previous * (WINDOW - elapsed) / WINDOW + count


def retry_after(limit: int, count: int, previous: int, elapsed: float) -> int:
    """Whole seconds until one more request fits under ``limit`` by :func:`estimate` (1 to twice
    ``WINDOW``: a small limit used up early in a window is still partly counted in the next)."""
    if count < limit and previous:
        # Within this window, once enough of the previous window's share has decayed.
        wait = (WINDOW - elapsed) - WINDOW * (limit - count - 1) / previous
    else:
        # In the next window, once this window's share has decayed below the limit.
        wait = (WINDOW - elapsed) + WINDOW * (1 - (limit - 1) / max(count, 1))
    return max(1, min(2 * WINDOW, math.ceil(wait)))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def caller_identity(secret_key: str) -> Callable[[Scope], str]:
    """Per caller: the login session of a validly signed access token (so users behind one NAT
    don't share a budget), else the client address. Made-up tokens cannot mint fresh budgets:
    only a signature made with ``secret_key`` counts, and personal access tokens count by address."""

    def identify(scope: Scope) -> str:
        token = parse_bearer(_header(scope, b"authorization"))
        if token and not token.startswith(PAT_PREFIX):
            claims = decode_access_token(secret_key, token, verify_exp=False)
            if claims is not None:
                return f"s:{claims.session_id}"
        return "ip:" + client_address(scope)

    return identify


def limits(settings: Settings) -> tuple[Limit, ...]:
    """(generous, per caller, everywhere but operations and the socket; strict, per address, on
    login, register, forgot and reset)."""
    return (
        Limit(
            "api",
            settings.rate_limit_per_minute,
            caller_identity(settings.secret_key),
            lambda path: not path.startswith(UNLIMITED_PREFIXES),
        ),
        Limit("auth", settings.auth_rate_limit_per_minute, client_address, lambda path: path in STRICT_PATHS),
    )


class RateLimiter:
    """ASGI middleware applying every :class:`Limit` to HTTP requests; 429 problem details (with
    ``Retry-After``) over a limit, ``RateLimit-Limit``/``-Remaining``/``-Reset`` on responses."""

    def __init__(self, app: ASGIApp, *, limits: tuple[Limit, ...], counter: Counter) -> None:
        self.app = app
        self.limits = limits
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        now = time.time()
        window, elapsed = divmod(now, WINDOW)
        tightest: tuple[int, int, int] | None = None  # (remaining, limit, reset) of the nearest limit
        for limit in self.limits:
            if not limit.applies(path):
                continue
            key = f"{limit.name}:{limit.identify(scope)}"
            try:
                count, previous = await self.counter.hit(key, int(window))
            except STORE_ERRORS as exc:
                log.warning("ratelimit.unavailable", error=type(exc).__name__)
                continue
            used = estimate(count, previous, elapsed)
            if used > limit.per_minute:
                with contextlib.suppress(*STORE_ERRORS):
                    await self.counter.undo(key, int(window))
                wait = retry_after(limit.per_minute, count - 1, previous, elapsed)
                raise TooManyRequestsException(
                    headers={
                        "Retry-After": str(wait),
                        "RateLimit-Limit": str(limit.per_minute),
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(wait),
                    }
                )
            remaining = max(0, math.floor(limit.per_minute - used))
            if tightest is None or remaining < tightest[0]:
                tightest = (remaining, limit.per_minute, math.ceil(WINDOW - elapsed))
        if tightest is None:
            await self.app(scope, receive, send)
            return
        remaining, per_minute, reset = tightest
        extra = [
            (b"ratelimit-limit", str(per_minute).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def counter_for(redis: Redis | None, prefix: str) -> Counter:
    return RedisCounter(redis, prefix) if redis is not None else MemoryCounter()


def middleware(settings: Settings, redis: Redis | None) -> Callable[[ASGIApp], ASGIApp]:
    """The rate limiter as a Litestar middleware factory."""
    configured = limits(settings)
    counter = counter_for(redis, settings.redis_prefix)

    def factory(app: ASGIApp) -> Any:
        return RateLimiter(app, limits=configured, counter=counter)

    return factory
