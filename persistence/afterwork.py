"""Jobs queued inside a transaction and handed to the job runner only after it commits.

The same pattern as :mod:`persistence.outbox`: a service calls :func:`queue_job` while it works;
``after_commit`` hands the jobs to the runner found in ``session.info[JOBS_KEY]`` (set by the app
factory and by the job runner's own sessions); a rollback drops them.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

JOBS_KEY = "job_runner"
_PENDING = "afterwork_jobs"


class JobEnqueuer(Protocol):
    def enqueue_soon(self, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any) -> None: ...


def queue_job(
    session: AsyncSession, name: str, *, key: str | None = None, delay: float = 0, **kwargs: Any
) -> None:
    """Run job ``name(**kwargs)`` once this session's transaction commits (``delay`` seconds later)."""
    session.info.setdefault(_PENDING, []).append((name, key, delay, kwargs))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending: list[tuple[str, str | None, float, dict[str, Any]]] = session.info.pop(_PENDING, [])
    runner: JobEnqueuer | None = session.info.get(JOBS_KEY)
    if runner is None:
        return
    for name, key, delay, kwargs in pending:
        runner.enqueue_soon(name, key=key, delay=delay, **kwargs)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is not None:  # a SAVEPOINT or a failed flush inside one
        return
    session.info.pop(_PENDING, None)
