"""Authenticated login sessions, remembered in this process for a few seconds.

Every REST request authenticates its access token. The JWT's signature and expiry are checked
in memory, but the session behind it (revoked? expired?) and its user (active? admin?) are rows:
without this cache, one query per request, and the cheapest authenticated request cost about
twice its work (``GET /auth/me``: 1.6 ms of CPU in process, 0.9 ms with a hit; bench/RESULTS.md).

What keeps a remembered session honest:

- **Revocation** (logout, password change or reset, refresh-token reuse, deactivation) queues
  ``SessionsRevoked``, and any flushed change to a user row ``UsersChanged``
  (persistence/outbox.py). After the commit they reach this process at once and the other
  processes through the broker (the same message that closes the session's sockets); the hub
  hands them to :meth:`SessionCache.control`, which forgets those sessions and users.
- **A broker outage** may lose such messages. While this process's broker connection is down
  (``broker_connected`` says so) the cache is neither read nor filled: every request reads its
  session from the database, so a logout on another instance applies here at once (and with the
  database down as well, the request fails with 503, never on a remembered session). On reconnect
  the whole cache is dropped, since messages may have been lost between the last one heard and the
  moment the connection was known to be down.
- **A read racing a revocation**: a session is remembered only if no revocation or user change
  arrived while it was being read (:attr:`SessionCache.generation`).
- **Age**: an entry is used for ``AUTH_CACHE_SECONDS`` (default 30) at most, which bounds
  anything no message announces (a change made with SQL by hand, or by a process without a
  broker, such as the ``corkboard`` CLI). ``AUTH_CACHE_SECONDS=0`` turns the cache off.

A hit still checks the session's expiry, and the token's user against the session's. The user is
rebuilt from a snapshot of its columns taken when the row was read and attached to the request's
database session as a persistent object without a query, so services use and change it exactly
as if it had been loaded (a stale ``version`` is what optimistic checks catch). Personal access
tokens are not cached: they are looked up by hash and record their last use.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state

from persistence.events import Control, SessionsRevoked, UsersChanged
from persistence.models import User
from server import metrics

_USER_COLUMNS: tuple[str, ...] = tuple(attr.key for attr in inspect(User).column_attrs)
_USER_MANAGER = inspect(User).class_manager


@dataclass(frozen=True, slots=True)
class CachedSession:
    session_id: UUID
    user_id: UUID
    expires_at: datetime | None
    user_values: tuple[Any, ...]  # User's columns, in _USER_COLUMNS order
    cached_at: float

    def user_in(self, session: AsyncSession) -> User:
        """The user as a persistent object of ``session``, without a query. Its columns go straight
        into the instance's state, as a query's rows do: ``User(**columns)`` would run the mapped
        constructor and an attribute event per column (about half this method's CPU, on every request)."""
        user: User = _USER_MANAGER.new_instance()
        instance_state(user).dict.update(zip(_USER_COLUMNS, self.user_values, strict=True))
        make_transient_to_detached(user)
        session.add(user)
        return user


class SessionCache:
    """Up to ``size`` sessions for ``ttl`` seconds each; see the module docstring."""

    def __init__(
        self, ttl: float, size: int = 10_000, broker_connected: Callable[[], bool] | None = None
    ) -> None:
        self.ttl = ttl
        self.size = size
        # Whether revocations can reach this process now; when not, the cache is not trusted.
        self.broker_connected = broker_connected or (lambda: True)
        self._entries: OrderedDict[UUID, CachedSession] = OrderedDict()
        self._by_user: dict[UUID, set[UUID]] = {}
        # Rises with every revocation, user change and reset. A session read from the database is
        # remembered only if none came while it was read: a revocation that committed after the
        # read, and whose message arrived before the answer, would otherwise be forgotten too soon.
        self.generation = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: UUID) -> CachedSession | None:
        if not self.broker_connected():
            metrics.AUTH_CACHE.labels("untrusted").inc()
            return None
        entry = self._entries.get(session_id)
        if entry is not None and time.monotonic() - entry.cached_at >= self.ttl:
            self._forget(session_id)
            entry = None
        metrics.AUTH_CACHE.labels("hit" if entry is not None else "miss").inc()
        return entry

    def put(self, session_id: UUID, expires_at: datetime | None, user: User, *, generation: int) -> None:
        """Remember a session just read and found valid, with its user as read (call before the
        request changes the user). ``generation``: :attr:`generation` before the read began."""
        if not self.enabled or generation != self.generation or not self.broker_connected():
            return
        entry = CachedSession(
            session_id=session_id,
            user_id=user.id,
            expires_at=expires_at,
            user_values=tuple(getattr(user, key) for key in _USER_COLUMNS),
            cached_at=time.monotonic(),
        )
        self._forget(session_id)
        self._entries[session_id] = entry
        self._by_user.setdefault(user.id, set()).add(session_id)
        while len(self._entries) > self.size:
            self._forget(next(iter(self._entries)))

    def _forget(self, session_id: UUID) -> None:
        entry = self._entries.pop(session_id, None)
        if entry is None:
            return
        sessions = self._by_user.get(entry.user_id)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._by_user[entry.user_id]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_user.clear()

    # ------------------------------------------------------------------ ControlListener
    def control(self, message: Control) -> None:
        if isinstance(message, SessionsRevoked | UsersChanged):
            self.generation += 1
        if isinstance(message, SessionsRevoked):
            for session_id in message.session_ids:
                self._forget(session_id)
        elif isinstance(message, UsersChanged):
            for user_id in message.user_ids:
                for session_id in list(self._by_user.get(user_id, ())):
                    self._forget(session_id)

    def broker_reconnected(self) -> None:
        self.clear()
