"""Notification mail: HTML and plain-text bodies from Jinja2 templates, and signed one-click
unsubscribe links (RFC 8058 ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` headers).

Jinja2 (autoescaping for the HTML templates) rather than ``string.Template``: the digest needs a loop
and the HTML needs escaping of user text (card titles, comments).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from persistence.models import Notification, User
from server.mail import Mail
from server.settings import Settings

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
UNSUBSCRIBE_AUDIENCE = "corkboard:unsubscribe"
ALL_KINDS = "*"
KIND_LABELS = {
    "card.assigned": "card assignments",
    "comment.mentioned": "mentions",
    "card.commented": "comments on cards you follow",
    "member.added": "being added to boards",
    "member.removed": "being removed from boards",
    "card.due": "due-date reminders",
}


@dataclass(frozen=True)
class Item:
    summary: str
    excerpt: str
    link: str


def describe(row: Notification, public_url: str) -> Item:
    """One line that says what happened, from the data captured when it was created."""
    d: dict[str, Any] = row.data or {}
    actor = d.get("actor_name") or "Someone"
    card = f"“{d.get('card_title', 'a card')}”"
    board = d.get("board_name", "a board")
    summaries = {
        "card.assigned": f"{actor} assigned you to {card} on {board}",
        "comment.mentioned": f"{actor} mentioned you on {card} ({board})",
        "card.commented": f"{actor} commented on {card} ({board})",
        "member.added": f"{actor} added you to the board {board}",
        "member.removed": f"{actor} removed you from the board {board}",
        "card.due": f"{card} on {board} is due {d.get('due_at', 'soon')}",
    }
    link = public_url.rstrip("/")
    if row.board_id:
        link += f"/boards/{row.board_id}"
        if row.card_id:
            link += f"/cards/{row.card_id}"
    return Item(summary=summaries.get(row.kind, row.kind), excerpt=str(d.get("excerpt", "")), link=link)


def unsubscribe_token(secret: str, user_id: UUID, kind: str) -> str:
    """A signed, non-expiring token that turns mail off for ``kind`` (or every kind: ``*``)."""
    return jwt.encode(
        {"sub": str(user_id), "kind": kind, "aud": UNSUBSCRIBE_AUDIENCE}, secret, algorithm="HS256"
    )


def read_unsubscribe_token(secret: str, token: str) -> tuple[UUID, str] | None:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=UNSUBSCRIBE_AUDIENCE)
        return UUID(claims["sub"]), str(claims["kind"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def _unsubscribe(settings: Settings, user: User, kind: str) -> tuple[str, dict[str, str]]:
    url = (
        f"{settings.public_url.rstrip('/')}/api/v1/notifications/unsubscribe"
        f"?token={unsubscribe_token(settings.secret_key, user.id, kind)}"
    )
    headers = {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return url, headers


def _settings_url(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/settings/notifications"


def notification_mail(settings: Settings, user: User, row: Notification) -> Mail:
    item = describe(row, settings.public_url)
    url, headers = _unsubscribe(settings, user, row.kind)
    subject = item.summary if len(item.summary) <= 120 else item.summary[:117] + "…"
    context = {
        "name": user.display_name or user.username,
        "item": item,
        "subject": subject,
        "kind_label": KIND_LABELS.get(row.kind, row.kind),
        "unsubscribe_url": url,
        "settings_url": _settings_url(settings),
    }
    return Mail(
        to=user.email,
        subject=subject,
        text=_ENV.get_template("notification.txt").render(context),
        html=_ENV.get_template("notification.html").render(context),
        headers=headers,
    )


def digest_mail(settings: Settings, user: User, rows: list[Notification]) -> Mail:
    items = [describe(row, settings.public_url) for row in rows]
    url, headers = _unsubscribe(settings, user, ALL_KINDS)
    subject = f"Corkboard: {len(items)} new notification{'' if len(items) == 1 else 's'}"
    context = {
        "name": user.display_name or user.username,
        "items": items,
        "subject": subject,
        "unsubscribe_url": url,
        "settings_url": _settings_url(settings),
    }
    return Mail(
        to=user.email,
        subject=subject,
        text=_ENV.get_template("digest.txt").render(context),
        html=_ENV.get_template("digest.html").render(context),
        headers=headers,
    )
