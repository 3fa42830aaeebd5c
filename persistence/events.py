"""The board event and the control messages: what persistence writes and the real-time layer sends.

``persistence`` writes an :class:`Event` in the same transaction as the change it describes and,
after the commit, hands it to the :class:`EventSink`. Control messages tell every instance that
access changed (a session revoked, a member removed, a board deleted) so it can close sockets.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec


class Event(msgspec.Struct, frozen=True):
    """The board event envelope of SPEC §3. ``data`` is pre-encoded JSON: encoded once, sent as is."""

    seq: int
    type: str
    board_id: UUID
    actor_id: UUID | None
    at: datetime
    data: msgspec.Raw


class SessionsRevoked(msgspec.Struct, frozen=True, tag="sessions_revoked"):
    """Close every socket of these sessions (or personal access tokens), close code 4001."""

    session_ids: list[UUID]


class AccessRevoked(msgspec.Struct, frozen=True, tag="access_revoked"):
    """``user_id`` lost access to ``board_id``: its channels on that board get ``phx_close``."""

    board_id: UUID
    user_id: UUID


class BoardDeleted(msgspec.Struct, frozen=True, tag="board_deleted"):
    board_id: UUID


class UserMessage(msgspec.Struct, frozen=True, tag="user_message"):
    """A push to every socket joined to ``user:{user_id}`` (notifications, membership changes)."""

    user_id: UUID
    event: str
    payload: msgspec.Raw


class UsersChanged(msgspec.Struct, frozen=True, tag="users_changed"):
    """These users' rows changed (role, activity, profile): processes forget what they cached."""

    user_ids: list[UUID]


Control = SessionsRevoked | AccessRevoked | BoardDeleted | UserMessage | UsersChanged


class ControlListener(Protocol):
    """Something outside the socket layer that must hear every control message (the REST
    session cache, server/auth/sessioncache.py), from this process and from the others."""

    def control(self, message: Control) -> None: ...

    def broker_reconnected(self) -> None:
        """The broker was away: messages may have been missed."""


class EventSink(Protocol):
    """Where committed events and control messages go. Both calls return at once (no I/O wait)."""

    def publish_events(self, events: Sequence[Event]) -> None: ...

    def publish_control(self, message: Control) -> None: ...


class RecordingSink:
    """Keeps what it was handed; the default until the real-time layer is wired (and for tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.controls: list[Control] = []

    def publish_events(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def publish_control(self, message: Control) -> None:
        self.controls.append(message)
