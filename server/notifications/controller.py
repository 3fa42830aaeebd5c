"""``/api/v1/notifications``: list, count, mark read, preferences, one-click unsubscribe."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Response, get, post, put
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import notifications as store
from persistence.db import WRITES_OPT
from persistence.notifications import CHANNELS, KINDS, RENAMED_KINDS, NotificationOut
from server.auth.deps import CurrentPrincipal, provide_principal
from server.errors import FieldError, Gone, ValidationFailed
from server.notifications.mailing import ALL_KINDS, read_unsubscribe_token
from server.settings import Settings


class NotificationPage(msgspec.Struct):
    items: list[NotificationOut]
    next_cursor: str | None


class Count(msgspec.Struct):
    count: int


class Preferences(msgspec.Struct):
    """Channel per kind: ``in_app`` (stored and pushed), ``email`` (also mailed at once),
    ``digest`` (also in the hourly digest mail) or ``off``."""

    preferences: dict[str, str]


def _check_preferences(changes: dict[str, str]) -> None:
    errors = [
        FieldError(f"preferences.{kind}", f"unknown kind; one of {', '.join(KINDS)}")
        for kind in changes
        if kind not in KINDS
    ]
    errors += [
        FieldError(f"preferences.{kind}", f"must be one of {', '.join(CHANNELS)}")
        for kind, channel in changes.items()
        if kind in KINDS and channel not in CHANNELS
    ]
    if errors:
        raise ValidationFailed(errors)


def _cursor(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "is not a cursor from a previous page")]) from None


class NotificationController(Controller):
    path = "/api/v1/notifications"
    tags = ["notifications"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", summary="My notifications, newest first")
    async def list_notifications(
        self,
        principal: CurrentPrincipal,
        db_session: AsyncSession,
        unread: bool | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> NotificationPage:
        """``?unread=true`` for unread only (``false``: read only); ``?cursor=`` from ``next_cursor``."""
        rows, after = await store.list_for(
            db_session, principal.user.id, unread=unread, after=_cursor(cursor), limit=limit
        )
        return NotificationPage(
            items=[store.to_out(r) for r in rows], next_cursor=str(after) if after else None
        )

    @get("/unread-count", summary="How many are unread")
    async def count_unread(self, principal: CurrentPrincipal, db_session: AsyncSession) -> Count:
        return Count(count=await store.unread_count(db_session, principal.user.id))

    @post("/{notification_id:uuid}/read", status_code=HTTP_200_OK, summary="Mark one read")
    async def read_one(
        self, notification_id: UUID, principal: CurrentPrincipal, db_session: AsyncSession
    ) -> NotificationOut:
        """Idempotent; every socket of the user gets ``notification.read``."""
        row = await store.mark_read(db_session, principal.user.id, notification_id)
        if row is None:
            raise Gone.not_found("notification")
        await db_session.commit()
        return store.to_out(row)

    @post("/read-all", status_code=HTTP_200_OK, summary="Mark all read")
    async def read_all(self, principal: CurrentPrincipal, db_session: AsyncSession) -> Count:
        """Returns how many changed."""
        changed = await store.mark_all_read(db_session, principal.user.id)
        await db_session.commit()
        return Count(count=changed)

    @get("/preferences", summary="My channel per notification kind")
    async def get_preferences(self, principal: CurrentPrincipal, db_session: AsyncSession) -> Preferences:
        return Preferences(preferences=await store.preferences(db_session, principal.user.id))

    @put("/preferences", summary="Set channels for some kinds")
    async def put_preferences(
        self, data: Preferences, principal: CurrentPrincipal, db_session: AsyncSession
    ) -> Preferences:
        """Kinds not named keep their channel. Unknown kinds or channels: 422, nothing changes."""
        changes = {RENAMED_KINDS.get(kind, kind): channel for kind, channel in data.preferences.items()}
        _check_preferences(changes)
        result = await store.set_preferences(db_session, principal.user.id, changes)
        await db_session.commit()
        return Preferences(preferences=result)


class UnsubscribeController(Controller):
    """The signed link in every notification mail; no login needed (RFC 8058 one-click POST too)."""

    path = "/api/v1/notifications/unsubscribe"
    tags = ["notifications"]

    @get(
        "/",
        summary="Stop mail for one kind (signed link from a mail)",
        media_type=MediaType.HTML,
        opt={WRITES_OPT: True},  # a GET that writes: its session gets a transaction
    )
    async def unsubscribe_link(
        self, token: str, db_session: AsyncSession, settings: Settings
    ) -> Response[str]:
        kind = await _unsubscribe(token, db_session, settings)
        what = "any notification mail" if kind == ALL_KINDS else f"mail for “{kind}” notifications"
        page = (
            "<!doctype html><meta charset=utf-8><title>Unsubscribed</title>"
            f"<p>Done: you will not get {what} any more. You still see them in Corkboard.</p>"
        )
        return Response(page, media_type=MediaType.HTML)

    @post("/", status_code=HTTP_200_OK, summary="One-click unsubscribe (List-Unsubscribe-Post)")
    async def unsubscribe_one_click(
        self, db_session: AsyncSession, settings: Settings, token: str
    ) -> Preferences:
        await _unsubscribe(token, db_session, settings)
        user_id = read_unsubscribe_token(settings.secret_key, token)
        assert user_id is not None
        return Preferences(preferences=await store.preferences(db_session, user_id[0]))


async def _unsubscribe(token: str, db_session: AsyncSession, settings: Settings) -> str:
    """Switch the token's kind (or every mailed kind) to ``in_app``; returns the kind."""
    claims = read_unsubscribe_token(settings.secret_key, token)
    if claims is None:
        raise ValidationFailed([FieldError("token", "is not a valid unsubscribe link")])
    user_id, kind = claims
    kind = RENAMED_KINDS.get(kind, kind)  # a link mailed before the kind was renamed
    current = await store.preferences(db_session, user_id)
    mailed = {k: "in_app" for k, channel in current.items() if channel in ("email", "digest")}
    changes = mailed if kind == ALL_KINDS else ({kind: "in_app"} if kind in mailed else {})
    if changes:
        await store.set_preferences(db_session, user_id, changes)
        await db_session.commit()
    return kind
