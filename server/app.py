"""The app factory: one place that wires settings, database, stores, middleware, routes and the
real-time layer."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.stores.registry import StoreRegistry
from redis.asyncio import Redis
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from persistence.afterwork import JOBS_KEY
from persistence.db import ensure_migrated, sqlalchemy_config, warm_pool
from persistence.outbox import SINK_KEY
from server import ratelimit, routes
from server.auth import passwords
from server.auth.deps import provide_account_service
from server.auth.lockout import LoginThrottle, MailLimits, throttle_store
from server.auth.sessioncache import SessionCache
from server.compression import compression_config
from server.errors import exception_handlers
from server.logging import configure_logging
from server.mail import Mailer
from server.middleware import RequestContextMiddleware
from server.openapi import SECURITY_SCHEMES, docs_assets, docs_plugin, document, operation_id
from server.sentry import init_sentry
from server.settings import Settings, get_settings
from server.stores import FailOpenStore


def create_app(settings: Settings | None = None, *, freeze_startup_heap: bool = False) -> Litestar:
    """The app. ``freeze_startup_heap`` (the served app, server/asgi.py; not the many apps of a test
    process): once started, move what exists then (~180,000 objects: modules, mappers, routes)
    out of the cyclic collector's reach with ``gc.freeze()``. A full collection of the running
    process then took ~4 ms instead of ~130 ms, a pause that landed on whatever request or
    rejoin happened to trigger it (the worst catch-up times of `python -m bench replay`).
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    passwords.configure_from(settings)
    init_sentry(settings)
    db_config = sqlalchemy_config(settings.effective_database_url, pool_size=settings.db_pool_size)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    rate_counter, rate_batched = ratelimit.counters_for(redis, settings.redis_prefix)
    login_throttle = LoginThrottle(throttle_store(redis, settings.redis_prefix), settings)
    # Its own counter: hour-long windows must not share the in-memory minute counter's table.
    mail_counter = ratelimit.counters_for(redis, settings.redis_prefix)[0]
    mail_limits = MailLimits(mail_counter, settings)
    mailer = Mailer(settings.smtp_url, settings.mail_from)

    from channels.hub import create_hub
    from server.auth.sockets import socket_authenticator  # the real-time layer: broker, sockets, presence

    hub = create_hub(settings, redis, db_config, socket_authenticator(settings))
    session_cache = SessionCache(
        ttl=settings.auth_cache_seconds, broker_connected=lambda: hub.broker.connected
    )
    hub.control_listeners.append(session_cache)
    # --- background jobs (server/jobs): queue + worker lifecycle; mail goes through retried jobs
    from server.boards.hooks import register_change_hook
    from server.jobs import create_job_runner
    from server.notifications.hooks import on_board_change

    register_change_hook(on_board_change)  # notifications, in the board change's own transaction

    jobs = create_job_runner(settings, redis, db_config, sink=hub.sink, mailer=mailer)
    info = db_config.session_config.info  # sqlalchemy_config's (listeners off), for every session
    assert isinstance(info, dict)
    info.update({SINK_KEY: jobs.trigger, JOBS_KEY: jobs})  # jobs.trigger wraps hub.sink

    if redis is not None:
        prefix = f"{settings.redis_prefix}:"
        stores = StoreRegistry(
            default_factory=lambda name: FailOpenStore(RedisStore(redis, namespace=prefix + name), name)
        )
    else:
        stores = StoreRegistry(default_factory=lambda _name: MemoryStore())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await ensure_migrated(
            db_config.get_engine(), settings.effective_database_url, auto=settings.is_sqlite
        )
        await warm_pool(db_config.get_engine())
        await hub.start()
        await jobs.start()
        if freeze_startup_heap:
            gc.collect()  # what is garbage now is freed, not frozen
            gc.freeze()
        try:
            yield
        finally:
            await jobs.stop()
            await hub.stop()
            await mailer.drain()
            if rate_batched is not None:
                await rate_batched.close()
            if redis is not None:
                await redis.aclose()

    app = Litestar(
        route_handlers=[*routes.route_handlers(), *hub.route_handlers(), docs_assets()],
        plugins=[SQLAlchemyPlugin(config=db_config), *hub.plugins()],
        dependencies={
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "accounts": Provide(provide_account_service),
        },
        middleware=[ratelimit.middleware(settings, rate_counter, rate_batched)],
        compression_config=compression_config(),
        stores=stores,
        cors_config=CORSConfig(
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "X-Request-ID"],
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
            render_plugins=[docs_plugin()],
            components=Components(security_schemes=dict(SECURITY_SCHEMES)),
            operation_id_creator=operation_id,
        ),
        lifespan=[lifespan],
        debug=False,
        logging_config=None,  # server/logging.py configured structlog and the stdlib loggers
        state=None,
    )
    document(app)
    app.state.settings = settings
    app.state.redis = redis
    app.state.rate_batched = rate_batched
    app.state.mailer = mailer
    app.state.login_throttle = login_throttle
    app.state.mail_limits = mail_limits
    app.state.hub = hub
    app.state.session_cache = session_cache
    app.state.jobs = jobs
    app.state.db_engine = db_config.get_engine()
    # Outside Litestar's router, not in `middleware=`: route middleware never sees requests that
    # match no route (404, 405), and those need a request id, security headers and a log line too.
    handler: Any = RequestContextMiddleware(app.asgi_handler)
    if settings.trust_proxy_headers:
        # uvicorn's own middleware: the client address and scheme come from X-Forwarded-For /
        # X-Forwarded-Proto only when the peer is one of TRUSTED_PROXIES.
        handler = ProxyHeadersMiddleware(handler, trusted_hosts=settings.trusted_proxies)
    app.asgi_handler = handler
    return app
