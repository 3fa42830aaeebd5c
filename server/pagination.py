"""Collections (SPEC §2): ``{"items": [...], "next_cursor": "…" | null}``, ``?limit=`` (default 50,
at most 200) and ``?cursor=``, a value opaque to clients that the server gave out."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec

from server.errors import FieldError, ValidationFailed

T = TypeVar("T")
P = TypeVar("P", bound="Page[Any]")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(msgspec.Struct, Generic[T]):
    """The collection shape. Each route answers a named subclass (``CardPage(Page[CardOut])``):
    the OpenAPI document names a schema after its class, and ``Page[CardOut]`` would carry module paths.
    The subclass declares ``items`` again with its item type, which the document does not infer."""

    items: list[T]
    next_cursor: str | None


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed([FieldError("limit", f"must be between 1 and {MAX_LIMIT}")])
    return limit


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed([FieldError("cursor", "is not a cursor this server gave out")]) from None


def uuid_cursor(cursor: str | None) -> UUID | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this server gave out")]) from None


def make_page(cls: type[P], items: list[Any], more: bool, key: Callable[[Any], str]) -> P:
    """A collection page of type ``cls``; ``next_cursor`` encodes the last item's key when there is more."""
    return cls(items=items, next_cursor=encode_cursor(key(items[-1])) if more and items else None)
