"""``/api/v1/boards/{id}/webhooks`` and ``/api/v1/webhooks/{id}``: board admins manage webhooks and
read their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.access import board_role
from persistence.eventlog import current_seq
from persistence.models import Webhook, WebhookDelivery
from server.auth.deps import CurrentPrincipal, provide_principal
from server.errors import FieldError, Forbidden, Gone, ValidationFailed
from server.settings import Settings
from server.webhooks.security import UnsafeURLError, resolve

EVENT_TYPES = frozenset(
    [
        "board.updated",
        "board.deleted",
        "member.added",
        "member.updated",
        "member.removed",
        "label.created",
        "label.updated",
        "label.deleted",
        "list.created",
        "list.updated",
        "list.moved",
        "list.archived",
        "list.deleted",
        "card.created",
        "card.updated",
        "card.moved",
        "card.archived",
        "card.deleted",
        "comment.created",
        "comment.updated",
        "comment.deleted",
        "checklist.created",
        "checklist.updated",
        "checklist.deleted",
    ]
)
FAMILIES = frozenset(t.split(".")[0] for t in EVENT_TYPES)
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000)]
Secret = Annotated[str, msgspec.Meta(min_length=16, max_length=200)]


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    secret: Secret
    events: list[str] = msgspec.field(default_factory=lambda: ["*"])


class WebhookPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``active: true`` re-enables a webhook that was disabled after repeated failures."""

    active: bool | None = None
    events: list[str] | None = None


class WebhookOut(msgspec.Struct):
    id: UUID
    board_id: UUID
    url: str
    events: list[str]
    active: bool
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None
    last_seq: int
    created_at: datetime


class WebhookPage(msgspec.Struct):
    items: list[WebhookOut]
    next_cursor: str | None = None


class DeliveryOut(msgspec.Struct):
    id: UUID
    event_seq: int
    event_type: str
    status: str
    attempts: int
    response_status: int | None
    error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryOut]
    next_cursor: str | None


def webhook_out(hook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        board_id=hook.board_id,
        url=hook.url,
        events=hook.events,
        active=hook.is_active,
        consecutive_failures=hook.consecutive_failures,
        disabled_at=hook.disabled_at,
        disabled_reason=hook.disabled_reason,
        last_seq=hook.last_seq,
        created_at=hook.created_at,
    )


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_seq=d.event_seq,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        response_status=d.response_status,
        error=d.error,
        last_attempt_at=d.last_attempt_at,
        next_attempt_at=d.next_attempt_at,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
    )


def _check_events(events: list[str]) -> list[str]:
    bad = [
        e
        for e in events
        if e != "*" and e not in EVENT_TYPES and not (e.endswith(".*") and e[:-2] in FAMILIES)
    ]
    if bad or not events:
        raise ValidationFailed(
            [
                FieldError(
                    "events",
                    "must list event types (e.g. card.created), families "
                    f"(card.*) or *; unknown: {', '.join(bad) or 'none given'}",
                )
            ]
        )
    return sorted(set(events))


async def _require_admin(session: AsyncSession, board_id: UUID, principal: CurrentPrincipal) -> None:
    role = await board_role(session, board_id, principal.user.id)
    if role is None:
        raise Gone.not_found("board")
    if role not in ("owner", "admin"):
        raise Forbidden("Only board owners and admins manage webhooks.")


async def _webhook_for_admin(session: AsyncSession, webhook_id: UUID, principal: CurrentPrincipal) -> Webhook:
    hook = await session.get(Webhook, webhook_id)
    if hook is None or await board_role(session, hook.board_id, principal.user.id) is None:
        raise Gone.not_found("webhook")
    await _require_admin(session, hook.board_id, principal)
    return hook


class WebhookController(Controller):
    path = "/api/v1"
    tags = ["webhooks"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/boards/{board_id:uuid}/webhooks", summary="The board's webhooks (board admins)")
    async def list_webhooks(
        self, board_id: UUID, principal: CurrentPrincipal, db_session: AsyncSession
    ) -> WebhookPage:
        await _require_admin(db_session, board_id, principal)
        rows = await db_session.scalars(
            select(Webhook).where(Webhook.board_id == board_id).order_by(Webhook.id)
        )
        return WebhookPage(items=[webhook_out(h) for h in rows])

    @post(
        "/boards/{board_id:uuid}/webhooks",
        status_code=HTTP_201_CREATED,
        summary="Add a webhook (board admins)",
    )
    async def create_webhook(
        self,
        board_id: UUID,
        data: WebhookIn,
        principal: CurrentPrincipal,
        db_session: AsyncSession,
        settings: Settings,
        state: State,
    ) -> WebhookOut:
        """Events from now on are POSTed to ``url``, signed with ``secret`` (see docs). URLs on
        private, loopback or link-local addresses are refused unless WEBHOOK_ALLOW_PRIVATE=true."""
        await _require_admin(db_session, board_id, principal)
        events = _check_events(data.events)
        try:
            await resolve(data.url, allow_private=settings.webhook_allow_private)
        except UnsafeURLError as exc:
            raise ValidationFailed([FieldError("url", str(exc))]) from None
        hook = Webhook(
            board_id=board_id,
            url=data.url,
            events=events,
            secret=data.secret,
            created_by=principal.user.id,
            last_seq=await current_seq(db_session, board_id),
        )
        db_session.add(hook)
        await db_session.commit()
        state.jobs.trigger.add_board(board_id)
        return webhook_out(hook)

    @patch("/webhooks/{webhook_id:uuid}", summary="Change events, or re-enable (board admins)")
    async def update_webhook(
        self,
        webhook_id: UUID,
        data: WebhookPatch,
        principal: CurrentPrincipal,
        db_session: AsyncSession,
        state: State,
    ) -> WebhookOut:
        hook = await _webhook_for_admin(db_session, webhook_id, principal)
        if data.events is not None:
            hook.events = _check_events(data.events)
        if data.active is True and not hook.is_active:
            # pick up from now: the events missed while disabled are not replayed
            hook.is_active, hook.disabled_at, hook.disabled_reason = True, None, None
            hook.consecutive_failures = 0
            hook.last_seq = await current_seq(db_session, hook.board_id)
        elif data.active is False:
            hook.is_active, hook.disabled_reason = False, "disabled by an admin"
        await db_session.commit()
        if hook.is_active:
            state.jobs.trigger.add_board(hook.board_id)
        return webhook_out(hook)

    @delete("/webhooks/{webhook_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Remove a webhook")
    async def delete_webhook(
        self, webhook_id: UUID, principal: CurrentPrincipal, db_session: AsyncSession
    ) -> None:
        hook = await _webhook_for_admin(db_session, webhook_id, principal)
        await db_session.delete(hook)
        await db_session.commit()

    @get("/webhooks/{webhook_id:uuid}/deliveries", summary="Delivery log, newest first (board admins)")
    async def deliveries(
        self,
        webhook_id: UUID,
        principal: CurrentPrincipal,
        db_session: AsyncSession,
        cursor: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> DeliveryPage:
        await _webhook_for_admin(db_session, webhook_id, principal)
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        if cursor:
            try:
                query = query.where(WebhookDelivery.id < UUID(cursor))
            except ValueError:
                raise ValidationFailed(
                    [FieldError("cursor", "is not a cursor from a previous page")]
                ) from None
        rows = list(await db_session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
        next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
        return DeliveryPage(items=[delivery_out(d) for d in rows[:limit]], next_cursor=next_cursor)
