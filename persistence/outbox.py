"""Hand events to the real-time layer after commit, and only after commit.

A service adds events and control messages to the session's outbox while it works; the
``after_commit`` listener hands them to the session's :class:`~persistence.events.EventSink`, and
``after_rollback`` drops them. The sink travels in ``session.info`` (set by the app's session
config), so two apps in one process never share one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, object_session

from persistence.events import Control, Event, EventSink, UsersChanged
from persistence.models import User

SINK_KEY = "event_sink"
_EVENTS = "outbox_events"
_CONTROLS = "outbox_controls"


def queue_event(session: AsyncSession, ev: Event) -> None:
    session.info.setdefault(_EVENTS, []).append(ev)


def requeue_event(session: AsyncSession, old: Event, new: Event) -> None:
    """Put ``new`` where ``old`` was queued (the same event, its data restated before commit)."""
    queued: list[Event] = session.info.get(_EVENTS, [])
    queued[queued.index(old)] = new


def queue_control(session: AsyncSession, message: Control) -> None:
    session.info.setdefault(_CONTROLS, []).append(message)


@event.listens_for(User, "after_update")
@event.listens_for(User, "after_delete")
def _user_changed(_mapper: Any, _connection: Any, user: User) -> None:
    """Any flushed change to a user row is announced after commit to every process, which drops
    what it cached of that user (the session cache, server/auth/sessioncache.py)."""
    session = object_session(user)
    if session is not None:
        session.info.setdefault(_CONTROLS, []).append(UsersChanged(user_ids=[user.id]))


def _sink(info: dict[str, Any]) -> EventSink | None:
    sink: EventSink | None = info.get(SINK_KEY)
    return sink


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    events: list[Event] = session.info.pop(_EVENTS, [])
    controls: list[Control] = session.info.pop(_CONTROLS, [])
    sink = _sink(session.info)
    if sink is None:
        return
    if events:
        sink.publish_events(events)
    for message in controls:
        sink.publish_control(message)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    # A rolled-back SAVEPOINT (``begin_nested``, e.g. an insert that lost a unique race, whose failed
    # flush rolls back an inner transaction too) fires this as well; the enclosing transaction and
    # what it queued go on, so only the outermost transaction's rollback drops them.
    if previous_transaction.parent is not None:
        return
    session.info.pop(_EVENTS, None)
    session.info.pop(_CONTROLS, None)
