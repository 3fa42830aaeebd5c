"""The app's key-value stores (Litestar stores: Redis when REDIS_URL is set, else memory).

They hold guards, not data: rate-limit counters and lockout counts for unknown logins. Code that
uses them treats the store being unreachable as "nothing recorded" and goes on.
"""

from __future__ import annotations

import structlog
from redis.exceptions import RedisError

log = structlog.get_logger("corkboard.stores")

STORE_ERRORS = (RedisError, OSError)


def store_unavailable(where: str, exc: BaseException) -> None:
    log.warning("store.unavailable", where=where, error=type(exc).__name__)
