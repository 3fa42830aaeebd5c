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
from persistence.models.notifications import (
    CardWatch,
    Notification,
    NotificationPreference,
    Webhook,
    WebhookDelivery,
)

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Base",
    "CardWatch",
    "Notification",
    "NotificationPreference",
    "OneTimeToken",
    "PersonalAccessToken",
    "RefreshToken",
    "User",
    "VersionedMixin",
    "Webhook",
    "WebhookDelivery",
    "metadata",
]
