"""The HTTP layer's Prometheus metrics, in the registry of :mod:`channels.metrics` (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from channels.metrics import REGISTRY

HTTP_REQUESTS = Counter(
    "corkboard_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "corkboard_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
AUTH_CACHE = Counter(
    "corkboard_auth_session_cache_total",
    # untrusted: the broker was down, so the cache was not read (server/auth/sessioncache.py)
    "Access tokens authenticated from the session cache (hit) or the database (miss, untrusted)",
    ["result"],
    registry=REGISTRY,
)


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


__all__ = ["AUTH_CACHE", "HTTP_LATENCY", "HTTP_REQUESTS", "REGISTRY", "observe_http"]
