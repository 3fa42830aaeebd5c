"""The app factory: one place that wires settings, database, stores, middleware, routes and the
real-time layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis

from persistence.afterwork import JOBS_KEY
from persistence.db import ensure_migrated, sqlalchemy_config
from persistence.outbox import SINK_KEY
from server import routes
from server.auth import passwords
from server.auth.deps import bearer_token, provide_account_service
from server.auth.tokens import PAT_PREFIX, decode_access_token
from server.errors import exception_handlers
from server.logging import configure_logging
from server.mail import Mailer
from server.middleware import RequestContextMiddleware
from server.openapi import SECURITY_SCHEMES
from server.sentry import init_sentry
from server.settings import Settings, get_settings

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


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    passwords.configure_from(settings)
    init_sentry(settings)
    db_config = sqlalchemy_config(settings.effective_database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    mailer = Mailer(settings.smtp_url, settings.mail_from)

    from channels.hub import create_hub  # the real-time layer: broker, sockets, presence

    hub = create_hub(settings, redis, db_config)
    # --- background jobs (server/jobs): queue + worker lifecycle; mail goes through retried jobs
    from server.boards.hooks import register_change_hook
    from server.jobs import create_job_runner
    from server.notifications.hooks import on_board_change

    register_change_hook(on_board_change)  # notifications, in the board change's own transaction

    jobs = create_job_runner(settings, redis, db_config, sink=hub.sink, mailer=mailer)
    db_config.session_config.info = {SINK_KEY: jobs.trigger, JOBS_KEY: jobs}  # trigger wraps hub.sink

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
        await jobs.start()
        try:
            yield
        finally:
            await jobs.stop()
            await hub.stop()
            await mailer.drain()
            if redis is not None:
                await redis.aclose()

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
    app = Litestar(
        route_handlers=[*routes.route_handlers(), *hub.route_handlers()],
        plugins=[SQLAlchemyPlugin(config=db_config), *hub.plugins()],
        dependencies={
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "accounts": Provide(provide_account_service),
        },
        middleware=[
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
            description=(
                "Real-time Kanban boards: REST for changes, Phoenix Channels at /socket for live events."
            ),
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        ),
        lifespan=[lifespan],
        debug=False,
        logging_config=None,  # server/logging.py configured structlog and the stdlib loggers
        state=None,
    )
    app.state.settings = settings
    app.state.redis = redis
    app.state.mailer = mailer
    app.state.hub = hub
    app.state.jobs = jobs
    app.state.db_engine = db_config.get_engine()
    # Outside Litestar's router, not in `middleware=`: route middleware never sees requests that
    # match no route (404, 405), and those need a request id, security headers and a log line too.
    app.asgi_handler = RequestContextMiddleware(
        app.asgi_handler, trust_proxy_headers=settings.trust_proxy_headers
    )
    return app
