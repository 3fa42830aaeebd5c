"""``corkboard worker``: a separate process that runs the job queue (needs ``REDIS_URL``)."""

from __future__ import annotations

from redis.asyncio import Redis

from server.settings import Settings


async def run_worker(settings: Settings, *, concurrency: int = 10) -> None:
    """Run jobs and schedules until SIGINT/SIGTERM. Live pushes go out through the real-time layer's
    sink (Redis), so sockets on every server instance see notifications made here."""
    from channels.hub import create_hub
    from persistence.db import ensure_migrated, sqlalchemy_config
    from server.auth.sockets import socket_authenticator
    from server.jobs import SaqRunner, create_job_runner
    from server.logging import configure_logging
    from server.mail import Mailer

    configure_logging(settings.log_level, settings.log_format)
    db_config = sqlalchemy_config(settings.effective_database_url, pool_size=settings.db_pool_size)
    engine = db_config.get_engine()
    await ensure_migrated(engine, settings.effective_database_url, auto=settings.is_sqlite)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    hub = create_hub(settings, redis, db_config, socket_authenticator(settings))
    mailer = Mailer(settings.smtp_url, settings.mail_from)
    runner = create_job_runner(settings, redis, db_config, sink=hub.sink, mailer=mailer, in_process=False)
    assert isinstance(runner, SaqRunner)
    await hub.start()
    await runner.start()
    try:
        await runner.make_worker(embedded=False, concurrency=concurrency).start()
    finally:
        await runner.stop()
        await hub.stop()
        await mailer.drain()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
