"""All ORM models; importing this module registers every table on ``metadata``."""

from persistence.models.accounts import (
    AuditEvent,
    AuthSession,
    OneTimeToken,
    PersonalAccessToken,
    RefreshToken,
    User,
)
from persistence.models.base import Base, VersionedMixin, metadata

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Base",
    "OneTimeToken",
    "PersonalAccessToken",
    "RefreshToken",
    "User",
    "VersionedMixin",
    "metadata",
]
