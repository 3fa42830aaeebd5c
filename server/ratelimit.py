"""Rate limits (Litestar's rate-limit middleware on the app's stores: Redis when REDIS_URL is set,
so limits hold across instances). A limiter whose store is unreachable lets requests through:
counters are a guard, not a dependency, and REST must keep working while Redis restarts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import CacheObject, RateLimitConfig, RateLimitMiddleware
from litestar.stores.base import Store

from server.auth.deps import bearer_token
from server.auth.tokens import PAT_PREFIX, decode_access_token
from server.settings import Settings
from server.stores import STORE_ERRORS, store_unavailable

# The strict limiter counts only these routes. (An ``exclude`` negative lookahead would do it too,
# but Litestar reads such a pattern as "excludes everything" and warns; a predicate says it plainly.)
STRICT_PATHS = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/auth/register",
        "/api/v1/auth/password/forgot",
        "/api/v1/auth/password/reset",
    }
)
UNLIMITED_PATHS = [r"^/health", r"^/metrics", r"^/schema", r"^/socket"]


def rate_limit_identity(secret_key: str) -> Callable[[Request[Any, Any, Any]], str]:
    """Per caller: the login session of a validly signed access token (so users behind one NAT
    don't share a budget), else the client address. Made-up tokens cannot mint fresh budgets:
    only a signature made with ``secret_key`` counts, and personal access tokens count by address."""

    def identify(request: Request[Any, Any, Any]) -> str:
        token = bearer_token(request)
        if token and not token.startswith(PAT_PREFIX):
            claims = decode_access_token(secret_key, token, verify_exp=False)
            if claims is not None:
                return f"s:{claims.session_id}"
        return "ip:" + (request.client.host if request.client else "unknown")

    return identify


def _client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _is_strict_route(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.rstrip("/") in STRICT_PATHS


class FailOpenRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter, except that a store error counts the request as the first of its window
    (and is logged) instead of failing it with a 500."""

    async def retrieve_cached_history(self, key: str, store: Store) -> CacheObject:
        try:
            return await super().retrieve_cached_history(key, store)
        except STORE_ERRORS as exc:
            store_unavailable("rate_limit", exc)
            return CacheObject(history=[], reset=0)

    async def set_cached_history(self, key: str, cache_object: CacheObject, store: Store) -> None:
        try:
            await super().set_cached_history(key, cache_object, store)
        except STORE_ERRORS as exc:
            store_unavailable("rate_limit", exc)


def rate_limits(settings: Settings) -> tuple[RateLimitConfig, RateLimitConfig]:
    """(generous, per caller, everywhere but operations and the socket; strict, per address, on
    login, register, forgot and reset)."""
    generous = RateLimitConfig(
        ("minute", settings.rate_limit_per_minute),
        exclude=UNLIMITED_PATHS,
        identifier_for_request=rate_limit_identity(settings.secret_key),
        store="rate_limit",
        middleware_class=FailOpenRateLimitMiddleware,
    )
    strict = RateLimitConfig(
        ("minute", settings.auth_rate_limit_per_minute),
        check_throttle_handler=_is_strict_route,
        identifier_for_request=_client_address,
        store="auth_rate_limit",
        middleware_class=FailOpenRateLimitMiddleware,
    )
    return generous, strict
