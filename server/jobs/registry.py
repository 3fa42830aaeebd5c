"""Every job the queue knows, with its retry policy, and the schedule."""

from __future__ import annotations

from typing import Any

import msgspec

from server.jobs.base import CronSpec, JobSpec, attempt_of, deps_of, log
from server.jobs.maintenance import purge_expired
from server.mail import Mail
from server.notifications.jobs import (
    send_digests,
    send_notification_email,
    send_reminders,
    sweep_pending_mail,
)
from server.webhooks.delivery import deliver_webhook, dispatch_all_webhooks, dispatch_webhooks


async def send_mail(ctx: dict[str, Any], *, mail: dict[str, Any]) -> None:
    """Send one mail; an SMTP failure raises, so the queue retries with backoff."""
    message = msgspec.convert(mail, Mail)
    try:
        await deps_of(ctx).mailer.send(message)
    except Exception as exc:
        log.warning(
            "mail.retrying", to=message.to, subject=message.subject, attempt=attempt_of(ctx), error=repr(exc)
        )
        raise


SPECS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in [
        JobSpec(send_mail, attempts=6, retry_delay=5, max_delay=900, timeout=30),
        JobSpec(purge_expired, attempts=3, retry_delay=30, timeout=300),
        JobSpec(send_notification_email, attempts=6, retry_delay=5, max_delay=900, timeout=30),
        JobSpec(send_digests, attempts=4, retry_delay=30, max_delay=900, timeout=600),
        JobSpec(sweep_pending_mail, attempts=1, timeout=120),
        JobSpec(send_reminders, attempts=3, retry_delay=10, timeout=300),
        JobSpec(dispatch_webhooks, attempts=5, retry_delay=1, max_delay=60, timeout=120),
        JobSpec(dispatch_all_webhooks, attempts=1, timeout=300),
        # one attempt per job: deliver_webhook schedules its own next attempt (and logs each one)
        JobSpec(deliver_webhook, attempts=1, timeout=60),
    ]
}

CRONS: list[CronSpec] = [
    CronSpec(purge_expired, "23 * * * *"),
    CronSpec(send_digests, "0 * * * *"),
    CronSpec(send_reminders, "*/5 * * * *"),
    CronSpec(sweep_pending_mail, "*/10 * * * *"),
    CronSpec(dispatch_all_webhooks, "* * * * *"),
]
