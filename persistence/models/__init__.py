"""All ORM models; importing this module registers every table on ``metadata``."""

from persistence.models.accounts import (
    AuditEvent,
    AuthSession,
    OneTimeToken,
    PersonalAccessToken,
    RefreshToken,
    ReservedUsername,
    User,
)
from persistence.models.base import Base, VersionedMixin, metadata
from persistence.models.boards import (
    Board,
    BoardEvent,
    BoardList,
    BoardMember,
    Card,
    ChecklistItem,
    Comment,
    Label,
    Mention,
    card_assignees,
    card_labels,
)
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
    "Board",
    "BoardEvent",
    "BoardList",
    "BoardMember",
    "Card",
    "CardWatch",
    "ChecklistItem",
    "Comment",
    "Label",
    "Mention",
    "Notification",
    "NotificationPreference",
    "OneTimeToken",
    "PersonalAccessToken",
    "RefreshToken",
    "ReservedUsername",
    "User",
    "VersionedMixin",
    "Webhook",
    "WebhookDelivery",
    "card_assignees",
    "card_labels",
    "metadata",
]
