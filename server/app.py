"""The app factory: one place that wires settings, database, stores, middleware, routes and the
real-time layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis

from persistence.db import ensure_migrated, sqlalchemy_config
from persistence.outbox import SINK_KEY
from server import routes
from server.auth.deps import bearer_token, provide_account_service
from server.auth.tokens import hash_secret
from server.errors import exception_handlers
from server.logging import configure_logging
from server.mail import Mailer
from server.middleware import RequestContextMiddleware
from server.settings import Settings, get_settings

STRICT_PATHS = r"^(?!/api/v1/auth/(login|register|password/forgot|password/reset)$)"
UNLIMITED_PATHS = [r"^/health", r"^/metrics", r"^/schema", r"^/socket"]


def _rate_limit_identity(request: Request[Any, Any, Any]) -> str:
    """Per caller: the token when there is one (so users behind one NAT don't share), else the address."""
    token = bearer_token(request)
    if token:
        return "t:" + hash_secret(token)[:24]
    return "ip:" + (request.client.host if request.client else "unknown")


def _client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    db_config = sqlalchemy_config(settings.effective_database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    mailer = Mailer(settings.smtp_url, settings.mail_from)

    from channels.hub import create_hub  # the real-time layer: broker, sockets, presence

    hub = create_hub(settings, redis, db_config)
    db_config.session_config.info = {SINK_KEY: hub.sink}

    if redis is not None:
        prefix = f"{settings.redis_prefix}:"
        stores = StoreRegistry(default_factory=lambda name: RedisStore(redis, namespace=prefix + name))
    else:
        stores = StoreRegistry(default_factory=lambda _name: MemoryStore())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await ensure_migrated(
            db_config.get_engine(), settings.effective_database_url, auto=settings.is_sqlite
        )
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await mailer.drain()
            if redis is not None:
                await redis.aclose()

    generous = RateLimitConfig(
        ("minute", settings.rate_limit_per_minute),
        exclude=UNLIMITED_PATHS,
        identifier_for_request=_rate_limit_identity,
        store="rate_limit",
    )
    strict = RateLimitConfig(
        ("minute", settings.auth_rate_limit_per_minute),
        exclude=STRICT_PATHS,
        identifier_for_request=_client_address,
        store="auth_rate_limit",
    )
    app = Litestar(
        route_handlers=[*routes.route_handlers(), *hub.route_handlers()],
        plugins=[SQLAlchemyPlugin(config=db_config), *hub.plugins()],
        dependencies={
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "accounts": Provide(provide_account_service),
        },
        middleware=[
            DefineMiddleware(RequestContextMiddleware, trust_proxy_headers=settings.trust_proxy_headers),
            generous.middleware,
            strict.middleware,
        ],
        stores=stores,
        cors_config=CORSConfig(
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "Retry-After", "X-Request-ID"],
        )
        if settings.cors_origins
        else None,
        exception_handlers=exception_handlers,
        openapi_config=OpenAPIConfig(
            title="Corkboard",
            version="1.0.0",
            description="Real-time Kanban boards: REST for changes, Phoenix Channels at /socket for events.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT or cbp_ token",
                        description="Access token or personal access token",
                    ),
                }
            ),
        ),
        lifespan=[lifespan],
        debug=False,
        state=None,
    )
    app.state.settings = settings
    app.state.redis = redis
    app.state.mailer = mailer
    app.state.hub = hub
    app.state.db_engine = db_config.get_engine()
    return app
