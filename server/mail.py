"""Outgoing mail: SMTP when ``SMTP_URL`` is set, otherwise written to the log. Sent off the request
path: ``send_later`` returns at once; the message goes out as a retried job when a job runner is
wired (``use_queue``), else on a background task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
import msgspec
import structlog

log = structlog.get_logger("corkboard.mail")


class Mail(msgspec.Struct, frozen=True):
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class Mailer:
    def __init__(
        self, smtp_url: str | None, sender: str, *, retry_delays: tuple[float, ...] = (2.0, 10.0, 30.0)
    ) -> None:
        self.smtp_url = smtp_url
        self.sender = sender
        self.retry_delays = retry_delays
        self._pending: set[asyncio.Task[None]] = set()
        self._enqueue: Callable[[Mail], None] | None = None

    def use_queue(self, enqueue: Callable[[Mail], None]) -> None:
        """Hand ``send_later`` mail to a job queue (retries with backoff) instead of a task."""
        self._enqueue = enqueue

    def build(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        for key, value in mail.headers.items():
            message[key] = value
        message.set_content(mail.text)
        if mail.html:
            message.add_alternative(mail.html, subtype="html")
        return message

    async def send(self, mail: Mail) -> None:
        """Send now (raises on SMTP failure, so a job queue can retry)."""
        if not self.smtp_url:
            log.info("mail.logged", to=mail.to, subject=mail.subject, body=mail.text)
            return
        parts = urlsplit(self.smtp_url)
        await aiosmtplib.send(
            self.build(mail),
            hostname=parts.hostname or "localhost",
            port=parts.port or (465 if parts.scheme == "smtps" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=parts.scheme == "smtps",
            start_tls=None,
            timeout=15,
        )
        log.info("mail.sent", to=mail.to, subject=mail.subject)

    def send_later(self, mail: Mail) -> None:
        """Send ``mail`` through the job queue when there is one, else on a background task that
        retries a failing SMTP server a few times."""
        if self._enqueue is not None:
            self._enqueue(mail)
            return
        task = asyncio.get_running_loop().create_task(self._send_with_retries(mail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_with_retries(self, mail: Mail) -> None:
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            try:
                await self.send(mail)
                return
            except Exception as exc:
                log.warning(
                    "mail.retrying", to=mail.to, subject=mail.subject, attempt=attempt, error=repr(exc)
                )
        log.error("mail.failed", to=mail.to, subject=mail.subject, attempts=len(self.retry_delays) + 1)

    async def drain(self, grace: float = 10) -> None:
        """Wait for mails in flight (at shutdown); give up on those still retrying after ``grace`` seconds."""
        if not self._pending:
            return
        _, still_waiting = await asyncio.wait(set(self._pending), timeout=grace)
        for task in still_waiting:
            task.cancel()
            log.error("mail.abandoned_at_shutdown")
