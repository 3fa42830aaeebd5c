"""What every job runner shares: job specs (retries, backoff), the context jobs receive, and the
runner interface the rest of the server uses (``enqueue`` / ``enqueue_soon`` / ``run_now``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from persistence.events import EventSink
    from server.mail import Mailer
    from server.settings import Settings

log = structlog.get_logger("corkboard.jobs")

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    """One kind of job. ``attempts`` counts the first try; retries wait ``retry_delay * 2**n``
    (with jitter, capped at ``max_delay``)."""

    function: JobFunction
    attempts: int = 5
    retry_delay: float = 2.0
    max_delay: float = 600.0
    timeout: int = 60

    @property
    def name(self) -> str:
        return self.function.__name__


@dataclass(frozen=True)
class CronSpec:
    """A job run on a schedule (croniter syntax, UTC)."""

    function: JobFunction
    cron: str

    @property
    def name(self) -> str:
        return self.function.__name__


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter over ``base * 2**(attempt-1)``."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(attempt - 1, 0)))


@dataclass
class JobDeps:
    """What a job function finds in ``ctx["deps"]``."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    mailer: Mailer
    sink: EventSink
    runner: JobRunner
    extra: dict[str, Any] = field(default_factory=dict)


def deps_of(ctx: dict[str, Any]) -> JobDeps:
    deps: JobDeps = ctx["deps"]
    return deps


def attempt_of(ctx: dict[str, Any]) -> int:
    """This run's attempt number, 1 for the first (from SAQ's job, or the local runner's count)."""
    job = ctx.get("job")
    if job is not None:
        return int(job.attempts)
    return int(ctx.get("attempt", 1))


class JobRunner(Protocol):
    """The job queue as the rest of the server sees it."""

    specs: dict[str, JobSpec]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any) -> bool:
        """Queue ``name(**kwargs)``. With ``key``, a job with the same key still pending is not
        queued again (returns False)."""
        ...

    def enqueue_soon(self, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any) -> None:
        """``enqueue`` from synchronous code (an after-commit hook): returns at once."""
        ...

    async def run_now(self, name: str, **kwargs: Any) -> Any:
        """Run a job function in this process and wait for it (operators' commands and tests)."""
        ...


class BackgroundTasks:
    """Fire-and-forget tasks kept referenced until done, drained on stop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        async def run() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("jobs.background_failed", task=name)

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace: float) -> None:
        pending: Sequence[asyncio.Task[Any]] = list(self._tasks)
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
