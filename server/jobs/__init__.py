"""Background jobs: a real queue on Redis (SAQ) or, on the embedded default, in-process tasks.

``create_job_runner(settings, redis, db_config, sink=…, mailer=…)`` is all the app factory calls;
the runner has ``start()`` / ``stop()`` and ``enqueue(name, key=…, **kwargs)``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from persistence.afterwork import JOBS_KEY
from persistence.outbox import SINK_KEY
from server.jobs.base import JobDeps, JobRunner, log
from server.jobs.local import LocalRunner
from server.jobs.redisq import SaqRunner
from server.webhooks.trigger import WebhookTrigger

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig

    from persistence.events import EventSink
    from server.mail import Mailer
    from server.settings import Settings

__all__ = ["JobRunner", "LocalRunner", "SaqRunner", "create_job_runner"]


def create_job_runner(
    settings: Settings,
    redis: Any,
    db_config: SQLAlchemyAsyncConfig,
    *,
    sink: EventSink,
    mailer: Mailer,
    in_process: bool | None = None,
) -> LocalRunner | SaqRunner:
    """The runner for these settings: SAQ on ``REDIS_URL`` (worker in this process unless
    ``RUN_WORKER_IN_PROCESS=false``), else the in-process runner. Mail goes through it, and
    ``runner.trigger`` is the sink to give sessions (it forwards to ``sink`` and kicks webhooks)."""
    from server.jobs.registry import CRONS, SPECS

    # JOB_RETRY_DELAY sets the first retry's delay of every retried job (then doubling, jittered).
    specs = {name: replace(spec, retry_delay=settings.job_retry_delay) for name, spec in SPECS.items()}
    runner: LocalRunner | SaqRunner
    if settings.redis_url:
        worker_here = settings.run_worker_in_process if in_process is None else in_process
        runner = SaqRunner(settings.redis_url, settings.redis_prefix, specs, CRONS, in_process=worker_here)
    else:
        if not settings.run_worker_in_process:
            log.warning("jobs.in_process_anyway", reason="RUN_WORKER_IN_PROCESS=false needs REDIS_URL")
        runner = LocalRunner(specs, CRONS)
    runner.trigger = WebhookTrigger(sink, runner)
    sessions = async_sessionmaker(
        db_config.get_engine(), expire_on_commit=False, info={SINK_KEY: sink, JOBS_KEY: runner}
    )
    runner.deps = JobDeps(settings=settings, sessions=sessions, mailer=mailer, sink=sink, runner=runner)
    mailer.use_queue(lambda mail: runner.enqueue_soon("send_mail", mail=mail.as_dict()))
    return runner
