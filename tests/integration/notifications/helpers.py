"""Helpers for notification tests: make notifications the way the boards services do, on the app's loop."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from persistence import notifications as store
from persistence.outbox import SINK_KEY
from tests.integration.notifications.conftest import in_app


async def notify(
    client: Any, app: Any, *, user_ids: list[str], kind: str, actor_id: str | None, **extra: Any
) -> None:
    """Create notifications in a transaction of the app's own engine and sink (as a service would)."""
    from persistence.afterwork import JOBS_KEY

    async def run() -> None:
        info = {SINK_KEY: app.state.hub.sink, JOBS_KEY: app.state.jobs}
        async with AsyncSession(app.state.db_engine, expire_on_commit=False, info=info) as session:
            await store.notify(
                session,
                user_ids=[UUID(u) for u in user_ids],
                kind=kind,
                actor_id=UUID(actor_id) if actor_id else None,
                data=extra.pop("data", {}),
                **extra,
            )
            await session.commit()

    await in_app(client, run)
