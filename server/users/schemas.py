"""Wire shapes of the user and audit routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from persistence.models import AuditEvent
from server.auth.schemas import DisplayName, Email, Password, Username, UserOut

Role = Literal["admin", "user"]


class UserPage(msgspec.Struct):
    items: list[UserOut]
    next_cursor: str | None


class AdminUserPatch(msgspec.Struct, forbid_unknown_fields=True):
    """What an admin may change; omitted fields stay as they are."""

    role: Role | None = None
    is_active: bool | None = None
    display_name: DisplayName | None = None
    version: int | None = None


class SelfPatch(msgspec.Struct, forbid_unknown_fields=True):
    """What a user may change of their own account; a new email needs ``current_password``."""

    display_name: DisplayName | None = None
    username: Username | None = None
    email: Email | None = None
    current_password: Password | None = None
    version: int | None = None


class SelfDeleteIn(msgspec.Struct):
    password: Password


class AuditOut(msgspec.Struct):
    id: UUID
    action: str
    actor_id: UUID | None
    subject_id: UUID | None
    ip: str
    detail: str
    data: dict[str, Any]
    created_at: datetime


class AuditPage(msgspec.Struct):
    items: list[AuditOut]
    next_cursor: str | None


Limit = Annotated[int, msgspec.Meta(ge=1, le=200)]


def audit_out(row: AuditEvent) -> AuditOut:
    return AuditOut(
        id=row.id,
        action=row.action,
        actor_id=row.actor_id,
        subject_id=row.subject_id,
        ip=row.ip,
        detail=row.detail,
        data=dict(row.data or {}),
        created_at=row.created_at,
    )
