"""Seams for other parts (notifications, webhooks) to act on board changes in the same transaction.

A hook receives each :class:`BoardChange` after its event is recorded and before the commit, on
the change's own session: rows it adds commit (or roll back) together with the change, and
anything it publishes must go through the outbox. A hook that raises aborts the change, so
hooks should only fail for reasons that ought to refuse it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from persistence.events import Event
from persistence.models import User


@dataclass(frozen=True, slots=True)
class BoardChange:
    """One committed-to-be change: its event, who made it, and who it newly concerns."""

    event: Event
    actor: User
    newly_assigned: list[UUID] = field(default_factory=list)  # card.created / card.updated
    newly_mentioned: list[UUID] = field(default_factory=list)  # comment.created / comment.updated
    added_member: UUID | None = None  # member.added


ChangeHook = Callable[[AsyncSession, BoardChange], Awaitable[None]]
_hooks: list[ChangeHook] = []


def register_change_hook(hook: ChangeHook) -> None:
    """Call ``hook`` for every board change from now on (idempotent per hook)."""
    if hook not in _hooks:
        _hooks.append(hook)


def unregister_change_hook(hook: ChangeHook) -> None:
    if hook in _hooks:
        _hooks.remove(hook)


async def run_change_hooks(session: AsyncSession, change: BoardChange) -> None:
    for hook in tuple(_hooks):
        await hook(session, change)
