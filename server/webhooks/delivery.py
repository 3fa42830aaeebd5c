"""Webhook jobs: turn board events into deliveries, and deliver them with retries.

Dispatch reads the board's event log after each webhook's ``last_seq`` cursor (not the in-memory
events of one process): a crash, a restart or a Redis outage between commit and dispatch loses
nothing, the next dispatch (or the per-minute sweep) carries on from the cursor. The cursor moves
in the same transaction that inserts the deliveries, under the webhook's row lock, and
``(webhook_id, event_seq)`` is unique: two dispatchers never create a delivery twice.

Each delivery is attempted up to :data:`MAX_ATTEMPTS` times with exponential backoff (base
``JOB_RETRY_DELAY``, doubling, jittered, capped at an hour). ``WEBHOOK_MAX_FAILURES`` failed
attempts in a row (across deliveries) disable the webhook.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import msgspec
from sqlalchemy import and_, or_, select, update

from persistence.afterwork import queue_job
from persistence.eventlog import events_after
from persistence.models import Webhook, WebhookDelivery
from server.jobs.base import backoff_delay, deps_of, log
from server.webhooks.security import SIGNATURE_HEADER, Target, UnsafeURLError, resolve, sign

MAX_ATTEMPTS = 8
MAX_BACKOFF = 3600.0
BATCH = 200
STUCK_AFTER = timedelta(minutes=2)
USER_AGENT = "Corkboard-Webhooks/1"


def matches(patterns: list[str], event_type: str) -> bool:
    """``*`` for everything, an exact type, or ``card.*`` for a family."""
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


async def dispatch_webhooks(ctx: dict[str, Any], *, board_id: str) -> int:
    """Create deliveries for the board's new events, for each active webhook; returns how many."""
    deps = deps_of(ctx)
    created = 0
    async with deps.sessions() as session:
        hook_ids = (
            await session.scalars(
                select(Webhook.id).where(Webhook.board_id == UUID(board_id), Webhook.is_active.is_(True))
            )
        ).all()
    for hook_id in hook_ids:
        while True:
            async with deps.sessions() as session, session.begin():
                hook = await session.scalar(select(Webhook).where(Webhook.id == hook_id).with_for_update())
                if hook is None or not hook.is_active:
                    break
                events = await events_after(session, hook.board_id, hook.last_seq, BATCH)
                if not events:
                    break
                for event in events:
                    if not matches(hook.events, event.type):
                        continue
                    delivery = WebhookDelivery(webhook_id=hook.id, event_seq=event.seq, event_type=event.type)
                    session.add(delivery)
                    await session.flush()
                    queue_job(
                        session,
                        "deliver_webhook",
                        key=f"webhook-delivery:{delivery.id}:1",
                        delivery_id=str(delivery.id),
                    )
                    created += 1
                hook.last_seq = events[-1].seq
            if len(events) < BATCH:
                break
    return created


async def dispatch_all_webhooks(ctx: dict[str, Any]) -> int:
    """The per-minute sweep: dispatch every board with an active webhook (catches up after outages)
    and requeue deliveries whose attempt is overdue (a job lost with a crashed worker)."""
    deps = deps_of(ctx)
    overdue = datetime.now(UTC) - STUCK_AFTER
    async with deps.sessions() as session:
        boards = (
            await session.scalars(select(Webhook.board_id).where(Webhook.is_active.is_(True)).distinct())
        ).all()
        stuck = (
            await session.execute(
                select(WebhookDelivery.id, WebhookDelivery.attempts).where(
                    WebhookDelivery.status == "pending",
                    or_(
                        WebhookDelivery.next_attempt_at < overdue,
                        and_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.created_at < overdue),
                    ),
                )
            )
        ).all()
    total = 0
    for board_id in boards:
        total += await dispatch_webhooks(ctx, board_id=str(board_id))
    for did, attempts in stuck:
        await deps.runner.enqueue(
            "deliver_webhook", key=f"webhook-delivery:{did}:{attempts + 1}", delivery_id=str(did)
        )
    return total


async def _post(target: Target, body: bytes, headers: dict[str, str], limit: float) -> httpx.Response:
    """POST to the checked address itself (Host header and TLS SNI carry the name)."""
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    async with httpx.AsyncClient(timeout=limit, follow_redirects=False, trust_env=False) as client:
        return await client.post(
            f"{target.scheme}://{address}:{target.port}{path}",
            content=body,
            headers={**headers, "Host": host_header},
            extensions=extensions,
        )


async def deliver_webhook(ctx: dict[str, Any], *, delivery_id: str) -> str:
    """One attempt at one delivery; schedules the next attempt itself on failure. Returns the status."""
    deps = deps_of(ctx)
    settings = deps.settings
    did = UUID(delivery_id)
    async with deps.sessions() as session:
        delivery = await session.get(WebhookDelivery, did)
        hook = await session.get(Webhook, delivery.webhook_id) if delivery else None
        if delivery is None or hook is None or delivery.status != "pending":
            return "gone" if delivery is None else delivery.status
        attempt = delivery.attempts + 1
        events = await events_after(session, hook.board_id, delivery.event_seq - 1, 1)
    # Claim this attempt: with two workers on one delivery, only one UPDATE matches.
    async with deps.sessions() as session, session.begin():
        claimed = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == did,
                WebhookDelivery.attempts == attempt - 1,
                WebhookDelivery.status == "pending",
            )
            .values(attempts=attempt, last_attempt_at=datetime.now(UTC))
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return "claimed"
        if not hook.is_active or not events or events[0].seq != delivery.event_seq:
            reason = "the webhook is disabled" if not hook.is_active else "the event is no longer in the log"
            await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == did).values(status="failed", error=reason)
            )
            return "failed"
    body = msgspec.json.encode(events[0])
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(hook.secret, timestamp, body),
        "X-Corkboard-Event": delivery.event_type,
        "X-Corkboard-Delivery": str(did),
        "X-Corkboard-Webhook": str(hook.id),
    }
    status_code: int | None = None
    error: str | None = None
    try:
        target = await resolve(hook.url, allow_private=settings.webhook_allow_private)
        response = await _post(target, body, headers, settings.webhook_timeout)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except UnsafeURLError as exc:
        error = f"refused: {exc}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    return await _record(ctx, did, hook.id, attempt, status_code, error)


async def _record(
    ctx: dict[str, Any], did: UUID, hook_id: UUID, attempt: int, status_code: int | None, error: str | None
) -> str:
    deps = deps_of(ctx)
    settings = deps.settings
    now = datetime.now(UTC)
    async with deps.sessions() as session, session.begin():
        hook = await session.scalar(select(Webhook).where(Webhook.id == hook_id).with_for_update())
        delivery = await session.get(WebhookDelivery, did)
        assert hook is not None
        assert delivery is not None
        delivery.response_status = status_code
        delivery.error = error
        if error is None:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = "succeeded", now, None
            hook.consecutive_failures = 0
            return "succeeded"
        hook.consecutive_failures += 1
        if hook.is_active and hook.consecutive_failures >= settings.webhook_max_failures:
            hook.is_active = False
            hook.disabled_at = now
            hook.disabled_reason = f"{hook.consecutive_failures} failed deliveries in a row; last: {error}"[
                :200
            ]
            log.warning("webhooks.disabled", webhook_id=str(hook.id), failures=hook.consecutive_failures)
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.webhook_id == hook.id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.id != did,
                )
                .values(status="failed", error="the webhook was disabled", next_attempt_at=None)
            )
        if not hook.is_active or attempt >= MAX_ATTEMPTS:
            delivery.status, delivery.next_attempt_at = "failed", None
            return "failed"
        wait = backoff_delay(attempt, settings.job_retry_delay, MAX_BACKOFF)
        delivery.next_attempt_at = now + timedelta(seconds=wait)
        queue_job(
            session,
            "deliver_webhook",
            key=f"webhook-delivery:{did}:{attempt + 1}",
            delay=wait,
            delivery_id=str(did),
        )
        return "pending"
