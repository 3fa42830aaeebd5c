"""The embedded default's job runner: the same job functions on asyncio tasks in this process.

Retries and backoff follow the job's :class:`JobSpec`; scheduled jobs fire from one loop that
sleeps until the next cron time. Nothing survives a restart, which is fine for the single-process
default: the scheduled sweeps (pending mail, webhook cursors) pick up whatever was in flight.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from server.jobs.base import BackgroundTasks, CronSpec, JobDeps, JobSpec, backoff_delay, log
from server.webhooks.trigger import WebhookTrigger


class LocalRunner:
    def __init__(self, specs: dict[str, JobSpec], crons: list[CronSpec]) -> None:
        self.specs = specs
        self.crons = crons
        self.deps: JobDeps | None = None
        self.trigger: WebhookTrigger | None = None
        self._tasks = BackgroundTasks()
        self._keys: set[str] = set()
        self._cron_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.trigger is not None:
            await self.trigger.refresh()
        if self.crons and self._cron_task is None:
            self._cron_task = asyncio.get_running_loop().create_task(self._cron_loop(), name="jobs.cron")

    async def stop(self) -> None:
        if self._cron_task is not None:
            self._cron_task.cancel()
            await asyncio.gather(self._cron_task, return_exceptions=True)
            self._cron_task = None
        await self._tasks.drain(grace=10)

    async def enqueue(self, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any) -> bool:
        spec = self.specs[name]
        if key is not None:
            if key in self._keys:
                return False
            self._keys.add(key)
        self._tasks.spawn(self._run(spec, key, delay, kwargs), name=f"job:{name}")
        return True

    def enqueue_soon(self, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any) -> None:
        self._tasks.spawn(self.enqueue(name, key=key, delay=delay, **kwargs), name=f"enqueue:{name}")

    async def run_now(self, name: str, **kwargs: Any) -> Any:
        return await self.specs[name].function(self._ctx(), **kwargs)

    def _ctx(self, attempt: int = 1) -> dict[str, Any]:
        assert self.deps is not None, "the runner is not wired (create_job_runner does it)"
        return {"deps": self.deps, "attempt": attempt}

    async def _run(self, spec: JobSpec, key: str | None, delay: float, kwargs: dict[str, Any]) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            for attempt in range(1, spec.attempts + 1):
                try:
                    await asyncio.wait_for(
                        spec.function(self._ctx(attempt), **kwargs), timeout=spec.timeout or None
                    )
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if attempt == spec.attempts:
                        log.exception("jobs.failed", job=spec.name, attempts=attempt)
                        return
                    wait = backoff_delay(attempt, spec.retry_delay, spec.max_delay)
                    log.warning(
                        "jobs.retry",
                        job=spec.name,
                        attempt=attempt,
                        error=str(exc)[:200],
                        retry_in=round(wait, 2),
                    )
                    await asyncio.sleep(wait)
        finally:
            if key is not None:
                self._keys.discard(key)

    async def _cron_loop(self) -> None:
        now = datetime.now(UTC)
        upcoming = {spec.name: croniter(spec.cron, now).get_next(float) for spec in self.crons}
        by_name = {spec.name: spec for spec in self.crons}
        while True:
            name = min(upcoming, key=lambda n: upcoming[n])
            await asyncio.sleep(max(0.0, upcoming[name] - time.time()))
            await self.enqueue(name, key=f"cron:{name}")
            upcoming[name] = croniter(by_name[name].cron, datetime.now(UTC)).get_next(float)
