"""The job runner on Redis: SAQ queues, with a worker inside the server or in ``corkboard worker``.

SAQ names its keys ``saq:<queue>:…``; :class:`PrefixedRedisQueue` puts ``REDIS_PREFIX`` in front
of every queue key and pub/sub channel so deployments (and parallel test runs) sharing one Redis
never meet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import CronJob, Job, Worker
from saq.queue.redis import PubSubMultiplexer, RedisQueue
from saq.types import Context

from server.jobs.base import BackgroundTasks, CronSpec, JobDeps, JobSpec, log
from server.webhooks.trigger import WebhookTrigger


class PrefixedRedisQueue(RedisQueue):
    def __init__(self, redis: Redis, *, prefix: str, name: str = "jobs") -> None:
        self.key_prefix = f"{prefix}:saq:{name}"
        super().__init__(redis, name=name)
        self._pubsub = PubSubMultiplexer(redis.pubsub(), prefix=f"{self.key_prefix}:job")

    def namespace(self, key: str) -> str:
        return f"{self.key_prefix}:{key}"

    def job_id(self, job_key: str) -> str:
        return f"{self.key_prefix}:job:{job_key}"

    def job_key_from_id(self, job_id: str) -> str:
        return job_id[len(f"{self.key_prefix}:job:") :]


class EmbeddedWorker(Worker[Context]):
    """A SAQ worker that leaves the process's signal handlers to uvicorn."""

    SIGNALS = []


class SaqRunner:
    def __init__(
        self,
        redis_url: str,
        prefix: str,
        specs: dict[str, JobSpec],
        crons: list[CronSpec],
        *,
        in_process: bool,
    ) -> None:
        self.specs = specs
        self.crons = crons
        self.in_process = in_process
        self.redis = Redis.from_url(redis_url)
        self.queue = PrefixedRedisQueue(self.redis, prefix=prefix)
        self.deps: JobDeps | None = None
        self.trigger: WebhookTrigger | None = None
        self._tasks = BackgroundTasks()
        self.worker: Worker[Context] | None = None
        self._worker_task: asyncio.Task[None] | None = None

    def make_worker(self, *, embedded: bool, concurrency: int = 10) -> Worker[Context]:
        async def startup(ctx: Context) -> None:
            ctx["deps"] = self.deps  # type: ignore[typeddict-unknown-key]

        cls: type[Worker[Context]] = EmbeddedWorker if embedded else Worker
        return cls(
            self.queue,
            functions=[(spec.name, spec.function) for spec in self.specs.values()],
            cron_jobs=[
                CronJob(c.function, cron=c.cron, timeout=self.specs[c.name].timeout) for c in self.crons
            ],
            startup=startup,
            concurrency=concurrency,
            timers={"sweep": 30, "abort": 1, "schedule": 1, "worker_info": 10},
        )

    async def start(self) -> None:
        await self.queue.connect()
        if self.trigger is not None:
            await self.trigger.refresh()
        if self.in_process:
            self.worker = self.make_worker(embedded=True)
            self._worker_task = asyncio.get_running_loop().create_task(
                self.worker.start(), name="jobs.worker"
            )

    async def stop(self) -> None:
        await self._tasks.drain(grace=5)
        if self.worker is not None:
            await self.worker.stop()
        if self._worker_task is not None:
            # A worker task that had not begun when stop() ran makes a fresh stop event as it
            # begins and would wait on it forever: cancelled, SAQ's start() stops it in its own
            # ``finally``. A task that did see the stop has ended or ends the same way.
            self._worker_task.cancel()
            await asyncio.gather(self._worker_task, return_exceptions=True)
        try:
            await self.queue.disconnect()
        except (RedisError, OSError) as exc:  # Redis is away: nothing to say goodbye to
            log.warning("jobs.disconnect_failed", error=type(exc).__name__)
        await self.redis.aclose()

    async def enqueue(self, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any) -> bool:
        spec = self.specs[name]
        job = Job(
            function=name,
            kwargs=kwargs,
            retries=spec.attempts,
            retry_delay=spec.retry_delay,
            retry_backoff=spec.max_delay,
            timeout=spec.timeout,
            scheduled=int(time.time() + delay) if delay > 0 else 0,
        )
        if key is not None:
            job.key = key
        queued = await self.queue.enqueue(job)
        if queued is None:
            log.debug("jobs.duplicate", job=name, key=key)
        return queued is not None

    def enqueue_soon(self, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any) -> None:
        self._tasks.spawn(self.enqueue(name, key=key, delay=delay, **kwargs), name=f"enqueue:{name}")

    async def run_now(self, name: str, **kwargs: Any) -> Any:
        assert self.deps is not None
        return await self.specs[name].function({"deps": self.deps}, **kwargs)
