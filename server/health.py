"""Operations routes: liveness, readiness and Prometheus metrics (no ``/api/v1`` prefix)."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import MediaType, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from server.metrics import REGISTRY


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


@get("/health", tags=["operations"], summary="Liveness")
async def health() -> Health:
    return Health(status="ok")


@get("/health/ready", tags=["operations"], summary="Readiness: the database and Redis answer")
async def ready(state: State) -> Response[Health]:
    """200 when the database (and Redis, when configured) answer within 2 s; 503 naming what is down."""
    checks: dict[str, str] = {}
    try:
        async with state.db_engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    redis = state.redis
    if redis is not None:
        try:
            await asyncio.wait_for(redis.ping(), 2)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return Response(
        Health(status="ok" if ok else "unavailable", checks=checks), status_code=200 if ok else 503
    )


@get("/metrics", tags=["operations"], summary="Prometheus metrics", media_type=MediaType.TEXT)
async def metrics() -> Response[bytes]:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
