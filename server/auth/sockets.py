"""How a socket's token is checked: the real-time layer's :class:`~channels.topics.Authenticator`
over the account service (expired access tokens allowed: a socket lives by its session)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.topics import Identity
from persistence.models.accounts import AuthSession, PersonalAccessToken
from server.auth.service import AccountService
from server.settings import Settings

_CHUNK = 5000


class AccountAuthenticator:
    """:class:`Authenticator` over ``AccountService.authenticate`` (expired access tokens allowed)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    async def authenticate(self, token: str) -> Identity | None:
        async with self.sessions() as session:
            principal = await AccountService(session, self.settings).authenticate(
                token, allow_expired_access=True
            )
        if principal is None:
            return None
        expires = principal.expires_at
        return Identity(
            user_id=principal.user_id,
            credential_id=principal.credential_id,
            expires_at=expires.timestamp() if expires is not None else None,
            can_write=principal.can_write,
        )

    async def revoked(self, credential_ids: set[UUID]) -> set[UUID]:
        if not credential_ids:
            return set()
        ids = list(credential_ids)
        live: set[UUID] = set()
        async with self.sessions() as session:
            for start in range(0, len(ids), _CHUNK):  # PostgreSQL takes at most 32,767 parameters
                chunk = ids[start : start + _CHUNK]
                live.update(
                    await session.scalars(
                        select(AuthSession.id).where(
                            AuthSession.id.in_(chunk), AuthSession.revoked_at.is_(None)
                        )
                    )
                )
                live.update(
                    await session.scalars(
                        select(PersonalAccessToken.id).where(
                            PersonalAccessToken.id.in_(chunk), PersonalAccessToken.revoked_at.is_(None)
                        )
                    )
                )
        return credential_ids - live


def socket_authenticator(
    settings: Settings,
) -> Callable[[async_sessionmaker[AsyncSession]], AccountAuthenticator]:
    """What :func:`channels.hub.create_hub` takes: the authenticator over the hub's sessions."""
    return lambda sessions: AccountAuthenticator(sessions, settings)
