"""Rate limits (Litestar's rate-limit middleware on the app's stores: Redis when REDIS_URL is set,
so limits hold across instances). The stores fail open (server/stores.py): while Redis is
unreachable requests go through uncounted rather than failing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig

from server.auth.deps import bearer_token
from server.auth.tokens import PAT_PREFIX, decode_access_token
from server.settings import Settings

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


async def _is_strict_route(request: Request[Any, Any, Any]) -> bool:
    # async on purpose: Litestar runs a sync check_throttle_handler in a worker thread, a thread
    # hop on every request (it was the largest single cost of a cheap authenticated GET).
    return request.url.path.rstrip("/") in STRICT_PATHS


def rate_limits(settings: Settings) -> tuple[RateLimitConfig, RateLimitConfig]:
    """(generous, per caller, everywhere but operations and the socket; strict, per address, on
    login, register, forgot and reset)."""
    generous = RateLimitConfig(
        ("minute", settings.rate_limit_per_minute),
        exclude=UNLIMITED_PATHS,
        identifier_for_request=rate_limit_identity(settings.secret_key),
        store="rate_limit",
    )
    strict = RateLimitConfig(
        ("minute", settings.auth_rate_limit_per_minute),
        check_throttle_handler=_is_strict_route,
        identifier_for_request=_client_address,
        store="auth_rate_limit",
    )
    return generous, strict
