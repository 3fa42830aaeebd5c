"""Rate limits: strict on login, register, forgot and reset; generous everywhere else.

Counted per minute with a sliding-window estimate (the previous minute's count, weighted by how
much of it still overlaps the last 60 s, plus the current minute's), in Redis when REDIS_URL is set
so every instance shares the count, in memory otherwise.

Why not Litestar's ``RateLimitMiddleware`` (used until the REST benchmark): it keeps a list of
timestamps per caller and reads it, then writes it back, for each limiter on every request: two
Redis round trips and a JSON document up to the limit's size each time, about a tenth of a cheap
request's CPU; and the read-then-write is guarded by a per-process lock only, so instances racing
on one key could each let a request through. Here a request counted exactly costs one pipelined
round trip (``INCR`` + ``EXPIRE`` + ``GET``), and ``INCR`` is atomic across instances. A refused
request is not counted (it is taken back), so a caller who waits ``Retry-After`` gets through.

The generous limit is counted in batches (:class:`BatchedRedisCounter`): a caller's first request
in a window is counted in Redis at once, and the rest in this process, sent to Redis as one
``INCRBY`` per caller every ``SYNC_SECONDS`` (0.1 s). That takes the round trip off nearly every
request (about a tenth of ``GET /cards/{id}``'s server CPU, bench/RESULTS.md), and an instance sees the
others' requests up to 0.1 s late: a caller spreading requests over N instances can pass a limit of
1,200 a minute by what N - 1 of them serve in 0.1 s. The strict limits, where a few requests
matter, stay exact.

Redis unreachable: requests go through uncounted (logged), like the other guards (server/stores.py).
"""

from __future__ import annotations

import asyncio
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
SYNC_SECONDS = 0.1  # BatchedRedisCounter: how often counted requests are sent to Redis
STRICT_PATHS = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/auth/register",
        "/api/v1/auth/password/forgot",
        "/api/v1/auth/password/reset",
    }
)
# Of the strict paths, those where only failures count: guessing needs failures, and an office
# behind one address logging in of a morning succeeds. Register and forgot send mail on success,
# which is what an abuser wants from them, so every request of theirs counts.
FAILURES_ONLY_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/password/reset"})
UNLIMITED_PREFIXES = ("/health", "/metrics", "/schema", "/socket")


class Counter(Protocol):
    async def hit(self, key: str, window: int, length: int = WINDOW) -> tuple[int, int]:
        """Count one request in ``window`` (of ``length`` seconds): ``(count in window, count in
        window - 1)``."""

    async def undo(self, key: str, window: int) -> None:
        """Take back the last :meth:`hit` (a refused request is not counted)."""


class RedisCounter:
    """Counts in Redis: one pipelined round trip per request, atomic across instances."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:rl:"

    async def hit(self, key: str, window: int, length: int = WINDOW) -> tuple[int, int]:
        current = f"{self.prefix}{key}:{window}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(current)
            pipe.expire(current, 2 * length)
            pipe.get(f"{self.prefix}{key}:{window - 1}")
            count, _, previous = await pipe.execute()
        return int(count), int(previous or 0)

    async def undo(self, key: str, window: int) -> None:
        await self.redis.decr(f"{self.prefix}{key}:{window}")


class BatchedRedisCounter:
    """Counts in Redis in batches (see the module docstring): exact for a caller's first request in
    a window, then counted here and sent every :data:`SYNC_SECONDS` as one pipelined round trip."""

    def __init__(self, exact: RedisCounter, *, sync_seconds: float = SYNC_SECONDS) -> None:
        self.exact = exact  # for a caller's first request in a window, and what it sends
        self.sync_seconds = sync_seconds
        # (key, window) -> Redis's count as last answered, the previous window's, and hits not sent
        self._known: dict[tuple[str, int], int] = {}
        self._previous: dict[tuple[str, int], int] = {}
        self._pending: dict[tuple[str, int], int] = {}
        self._sync: asyncio.Task[None] | None = None

    async def hit(self, key: str, window: int, length: int = WINDOW) -> tuple[int, int]:
        slot = (key, window)
        known = self._known.get(slot)
        if known is None:
            count, previous = await self.exact.hit(key, window)
            self._forget_before(window - 1)
            self._known[slot] = max(count, self._known.get(slot, 0))
            self._previous[slot] = previous
            return count, previous
        pending = self._pending.get(slot, 0) + 1
        self._pending[slot] = pending
        if self._sync is None:
            self._sync = asyncio.get_running_loop().create_task(self._sync_later(), name="ratelimit.sync")
        return known + pending, self._previous[slot]

    async def undo(self, key: str, window: int) -> None:
        slot = (key, window)
        if self._pending.get(slot, 0) > 0:
            self._pending[slot] -= 1
        else:
            await self.exact.undo(key, window)
            if slot in self._known:
                self._known[slot] -= 1

    async def _sync_later(self) -> None:
        await asyncio.sleep(self.sync_seconds)
        self._sync = None
        await self.flush()

    async def flush(self) -> None:
        """Send the counted hits now (one pipelined round trip); on a Redis error they are dropped."""
        batch = {slot: n for slot, n in self._pending.items() if n > 0}
        self._pending = {}
        if not batch:
            return
        prefix = self.exact.prefix
        try:
            async with self.exact.redis.pipeline(transaction=False) as pipe:
                for (key, window), n in batch.items():
                    pipe.incrby(f"{prefix}{key}:{window}", n)
                    pipe.expire(f"{prefix}{key}:{window}", 2 * WINDOW)
                replies = await pipe.execute()
        except STORE_ERRORS as exc:
            log.warning("ratelimit.unavailable", error=type(exc).__name__)
            return
        for slot, total in zip(batch, replies[::2], strict=True):
            if slot in self._known:
                self._known[slot] = max(self._known[slot], int(total))

    async def close(self) -> None:
        """Stop the scheduled send and send what is counted."""
        if self._sync is not None:
            self._sync.cancel()
            self._sync = None
        await self.flush()

    def _forget_before(self, window: int) -> None:
        for table in (self._known, self._previous):
            for slot in [s for s in table if s[1] < window]:
                del table[slot]


class MemoryCounter:
    """Counts in this process (the embedded default: one process)."""

    def __init__(self) -> None:
        self.windows: dict[int, dict[str, int]] = {}

    async def hit(self, key: str, window: int, length: int = WINDOW) -> tuple[int, int]:
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
    """``per_minute`` requests per caller (as ``identify`` names it) on the paths ``applies`` to;
    ``exact``: counted in Redis on every request, never in batches; on the paths
    ``failures_only`` applies to, a request answered below 400 is taken back (counted first, so
    concurrent requests cannot pass the limit together)."""

    name: str
    per_minute: int
    identify: Callable[[Scope], str]
    applies: Callable[[str], bool]
    exact: bool = False
    failures_only: Callable[[str], bool] = lambda _path: False


def estimate(count: int, previous: int, elapsed: float, length: int = WINDOW) -> float:
    """Requests in the last ``length`` seconds, assuming the previous window's were spread evenly."""
    return previous * (length - elapsed) / length + count


def retry_after(limit: int, count: int, previous: int, elapsed: float, length: int = WINDOW) -> int:
    """Whole seconds until one more request fits under ``limit`` by :func:`estimate` (1 to twice
    ``length``: a small limit used up early in a window is still partly counted in the next)."""
    if count < limit and previous:
        # Within this window, once enough of the previous window's share has decayed.
        wait = (length - elapsed) - length * (limit - count - 1) / previous
    else:
        # In the next window, once this window's share has decayed below the limit.
        wait = (length - elapsed) + length * (1 - (limit - 1) / max(count, 1))
    return max(1, min(2 * length, math.ceil(wait)))


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
        Limit(
            "auth",
            settings.auth_rate_limit_per_minute,
            client_address,
            lambda path: path in STRICT_PATHS,
            exact=True,
            failures_only=lambda path: path in FAILURES_ONLY_PATHS,
        ),
    )


class RateLimiter:
    """ASGI middleware applying every :class:`Limit` to HTTP requests; 429 problem details (with
    ``Retry-After``) over a limit, ``RateLimit-Limit``/``-Remaining``/``-Reset`` on responses."""

    def __init__(
        self, app: ASGIApp, *, limits: tuple[Limit, ...], counter: Counter, batched: Counter | None = None
    ) -> None:
        self.app = app
        self.limits = limits
        self.counter = counter  # exact
        self.batched = batched or counter  # for limits that are not ``exact``

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        now = time.time()
        window, elapsed = divmod(now, WINDOW)
        tightest: tuple[int, int, int] | None = None  # (remaining, limit, reset) of the nearest limit
        if_success: list[tuple[Counter, str]] = []  # hits to take back if the answer is a success
        for limit in self.limits:
            if not limit.applies(path):
                continue
            key = f"{limit.name}:{limit.identify(scope)}"
            counter = self.counter if limit.exact else self.batched
            try:
                count, previous = await counter.hit(key, int(window))
            except STORE_ERRORS as exc:
                log.warning("ratelimit.unavailable", error=type(exc).__name__)
                continue
            used = estimate(count, previous, elapsed)
            if used > limit.per_minute:
                with contextlib.suppress(*STORE_ERRORS):
                    await counter.undo(key, int(window))
                wait = retry_after(limit.per_minute, count - 1, previous, elapsed)
                raise TooManyRequestsException(
                    headers={
                        "Retry-After": str(wait),
                        "RateLimit-Limit": str(limit.per_minute),
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(wait),
                    }
                )
            if limit.failures_only(path):
                if_success.append((counter, key))
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

        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if status < 400:
                for counter, key in if_success:
                    with contextlib.suppress(*STORE_ERRORS):
                        await counter.undo(key, int(window))


class Quota:
    """Actions (not requests) counted per identity in a sliding window of ``length`` seconds,
    exactly (in Redis with ``REDIS_URL``, so every instance agrees; in memory otherwise): for what a
    route does on someone's behalf, such as sending mail."""

    def __init__(self, counter: Counter, *, length: int, detail: str) -> None:
        self.counter = counter
        self.length = length
        self.detail = detail

    async def take(self, *checks: tuple[str, int]) -> None:
        """Count one action for each ``(identity, limit)``; over a limit, take every count back
        and raise 429 with ``Retry-After``. A store outage lets the action through (logged)."""
        window, elapsed = divmod(time.time(), self.length)
        taken: list[str] = []
        try:
            for key, limit in checks:
                count, previous = await self.counter.hit(key, int(window), self.length)
                taken.append(key)
                if estimate(count, previous, elapsed, self.length) > limit:
                    for done in taken:
                        await self.counter.undo(done, int(window))
                    wait = retry_after(limit, count - 1, previous, elapsed, self.length)
                    raise TooManyRequestsException(detail=self.detail, headers={"Retry-After": str(wait)})
        except STORE_ERRORS as exc:
            log.warning("ratelimit.unavailable", error=type(exc).__name__)


def counters_for(redis: Redis | None, prefix: str) -> tuple[Counter, BatchedRedisCounter | None]:
    """(the exact counter, the batched one): Redis's with ``redis``, else one in-memory counter."""
    if redis is None:
        return MemoryCounter(), None
    exact = RedisCounter(redis, prefix)
    return exact, BatchedRedisCounter(exact)


def middleware(
    settings: Settings, counter: Counter, batched: Counter | None = None
) -> Callable[[ASGIApp], ASGIApp]:
    """The rate limiter as a Litestar middleware factory."""
    configured = limits(settings)

    def factory(app: ASGIApp) -> Any:
        return RateLimiter(app, limits=configured, counter=counter, batched=batched)

    return factory
