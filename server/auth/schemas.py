"""Wire shapes of the auth and user routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from persistence.models import User
from server.pagination import Page
from server.times import to_utc

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Username = Annotated[str, msgspec.Meta(min_length=2, max_length=39)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class RegisterIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginIn(msgspec.Struct):
    login: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    password: Password


class TokenOut(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class RefreshIn(msgspec.Struct):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LogoutIn(msgspec.Struct):
    all: bool = False


class TokenIn(msgspec.Struct):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class EmailIn(msgspec.Struct):
    email: Email


class ResetIn(msgspec.Struct):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    password: Password


class ChangePasswordIn(msgspec.Struct):
    current_password: Password
    new_password: Password


class UserOut(msgspec.Struct):
    id: UUID
    email: str
    username: str
    display_name: str
    role: str
    is_active: bool
    email_verified: bool
    created_at: datetime
    version: int


class PublicUserOut(msgspec.Struct):
    """What other users may see of a user (board members, mentions)."""

    id: UUID
    username: str
    display_name: str


class SessionOut(msgspec.Struct):
    id: UUID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    ip: str
    user_agent: str
    current: bool


class PatIn(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[Literal["read", "write"]], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["read"]
    )
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            self.expires_at = to_utc(self.expires_at)


class PatOut(msgspec.Struct, omit_defaults=True):
    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    token: str | None = None  # shown once, on creation


class Accepted(msgspec.Struct):
    detail: str


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
        version=user.version,
    )


class SessionPage(Page[SessionOut]):
    items: list[SessionOut]


class PatPage(Page[PatOut]):
    items: list[PatOut]
