"""Kick the webhook dispatcher when a board with webhooks gets events.

Wraps the real-time layer's sink (it sees every committed event, after commit) and enqueues a
dispatch job for boards known to have an active webhook. The set of such boards is refreshed from
the database at most every :data:`REFRESH_SECONDS`; a webhook created on another instance is
therefore picked up within that time, and the per-minute sweep covers the gap: nothing is lost,
because dispatch reads the event log after each webhook's cursor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select

from persistence.events import Control, Event, EventSink
from persistence.models import Webhook
from server.jobs.base import log

REFRESH_SECONDS = 30.0


class WebhookTrigger:
    def __init__(self, inner: EventSink, runner: Any) -> None:
        self.inner = inner
        self.runner = runner
        self.boards: set[UUID] = set()
        self._refreshed = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    def publish_events(self, events: Sequence[Event]) -> None:
        self.inner.publish_events(events)
        self._maybe_refresh()
        last: dict[UUID, int] = {}
        for event in events:
            last[event.board_id] = max(event.seq, last.get(event.board_id, 0))
        for board_id, seq in last.items():
            if board_id in self.boards:
                self.runner.enqueue_soon(
                    "dispatch_webhooks", key=f"webhook-dispatch:{board_id}:{seq}", board_id=str(board_id)
                )

    def publish_control(self, message: Control) -> None:
        self.inner.publish_control(message)

    def add_board(self, board_id: UUID) -> None:
        self.boards.add(board_id)

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._refreshed < REFRESH_SECONDS or self._refreshing is not None:
            return
        if self.runner.deps is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refreshing = loop.create_task(self.refresh())

    async def refresh(self) -> None:
        """Reload the set of boards with an active webhook (also called at start)."""
        try:
            async with self.runner.deps.sessions() as session:
                rows = await session.scalars(
                    select(Webhook.board_id).where(Webhook.is_active.is_(True)).distinct()
                )
                self.boards = set(rows.all())
            self._refreshed = time.monotonic()
        except Exception:
            log.exception("webhooks.refresh_failed")
        finally:
            self._refreshing = None
