"""The app's key-value stores (Litestar stores: Redis when REDIS_URL is set, else memory).

They hold guards, not data: rate-limit counters and lockout counts for unknown logins. So a store
that cannot be reached behaves as an empty one (reads find nothing, writes are dropped, each
failure logged) instead of failing the request: REST keeps working while Redis restarts.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from litestar.stores.base import Store
from redis.exceptions import RedisError

log = structlog.get_logger("corkboard.stores")

STORE_ERRORS = (RedisError, OSError)


class FailOpenStore(Store):
    """Wraps a store; while it is unreachable, behaves as an empty store."""

    def __init__(self, inner: Store, name: str) -> None:
        self.inner = inner
        self.name = name

    def _unavailable(self, exc: BaseException) -> None:
        log.warning("store.unavailable", store=self.name, error=type(exc).__name__)

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        try:
            await self.inner.set(key, value, expires_in)
        except STORE_ERRORS as exc:
            self._unavailable(exc)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        try:
            return await self.inner.get(key, renew_for)
        except STORE_ERRORS as exc:
            self._unavailable(exc)
            return None

    async def delete(self, key: str) -> None:
        try:
            await self.inner.delete(key)
        except STORE_ERRORS as exc:
            self._unavailable(exc)

    async def delete_all(self) -> None:
        try:
            await self.inner.delete_all()
        except STORE_ERRORS as exc:
            self._unavailable(exc)

    async def exists(self, key: str) -> bool:
        try:
            return await self.inner.exists(key)
        except STORE_ERRORS as exc:
            self._unavailable(exc)
            return False

    async def expires_in(self, key: str) -> int | None:
        try:
            return await self.inner.expires_in(key)
        except STORE_ERRORS as exc:
            self._unavailable(exc)
            return None
