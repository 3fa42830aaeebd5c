"""What every part of the account service shares: its types, the audit log and
session revocation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.events import SessionsRevoked
from persistence.models import AuditEvent, AuthSession, User
from persistence.outbox import queue_control
from server.settings import Settings

if TYPE_CHECKING:
    from server.auth.sessioncache import SessionCache

USERNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{1,38}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user through a login session or through a personal access token."""

    user: User
    kind: str  # "session" | "pat"
    credential_id: UUID  # the session id, or the personal access token id
    scopes: frozenset[str]
    expires_at: datetime | None = None  # the session's or token's end; None: a token without one

    @property
    def user_id(self) -> UUID:
        return self.user.id

    @property
    def can_write(self) -> bool:
        return "write" in self.scopes

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: UUID


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A secret shown to its owner once (mail links, personal access tokens)."""

    secret: str
    record_id: UUID


def normalize_email(email: str) -> str:
    return email.strip().lower()


class AccountBase:
    def __init__(
        self, session: AsyncSession, settings: Settings, session_cache: SessionCache | None = None
    ) -> None:
        self.session = session
        self.settings = settings
        self.session_cache = session_cache

    async def current_user(self, principal: Principal) -> User:
        """The caller's row as committed now, for a change to it or a check of its password: the
        principal's copy may come from the session cache (server/auth/sessioncache.py)."""
        await self.session.refresh(principal.user)
        return principal.user

    # ------------------------------------------------------------------ audit
    def audit(
        self,
        action: str,
        *,
        actor_id: UUID | None = None,
        subject_id: UUID | None = None,
        ip: str = "",
        detail: str = "",
        data: dict[str, object] | None = None,
    ) -> None:
        self.session.add(
            AuditEvent(
                action=action, actor_id=actor_id, subject_id=subject_id, ip=ip, detail=detail, data=data or {}
            )
        )

    # ------------------------------------------------------------------ revoking sessions
    async def _revoke_sessions(self, sessions: list[AuthSession], *, reason: str) -> None:
        now = utcnow()
        live = [s for s in sessions if s.revoked_at is None]
        for s in live:
            s.revoked_at = now
            s.revoked_reason = reason
        if live:
            queue_control(self.session, SessionsRevoked(session_ids=[s.id for s in live]))

    async def revoke_user_sessions(self, user_id: UUID, *, reason: str, keep: UUID | None = None) -> None:
        """Revoke every live session of ``user_id`` but ``keep`` (no commit: part of a larger change)."""
        rows = await self.session.scalars(
            select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        )
        await self._revoke_sessions([s for s in rows if s.id != keep], reason=reason)
