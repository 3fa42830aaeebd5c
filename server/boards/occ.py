"""Optimistic concurrency in one place (after Taiga's ``occ`` mixin).

Every mutable resource has ``version`` (sent as ``ETag: "<version>"``). A change may name the
version it was based on, in the body (``version``) or in ``If-Match: "<version>"``; if that is not
the current version the change is refused with 409 and the current resource. A change that names
none is applied as is. The check runs after the board lock is taken, so it compares against the
committed state no other writer can change before this one commits.
"""

from __future__ import annotations

import re
from typing import Any

from msgspec import UNSET, UnsetType

from server.errors import FieldError, StaleVersion, ValidationFailed

# A version, or a board's ETag (``"<version>.<seq>.…"``, :func:`board_etag`), whose first part is
# the board's version.
_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,18})(?:\.\d{1,18}){0,3}"?\s*$')
_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e]*)"\s*(?:,|$)')


def parse_if_match(header: str | None) -> int | None:
    """The version named by ``If-Match`` (``"3"``, ``W/"3"`` or ``3``, or the ``ETag`` of
    ``GET /boards/{id}``, whose first part is the board's version); None when absent or ``*``."""
    if header is None or header.strip() in ("", "*"):
        return None
    match = _IF_MATCH.match(header)
    if match is None:
        raise ValidationFailed([FieldError("If-Match", 'must be an ETag like "3"')])
    return int(match.group(1))


def expected_version(body_version: int | UnsetType | None, if_match: int | None) -> int | None:
    """The body's ``version`` wins over ``If-Match``; None means "apply as is"."""
    if body_version is not UNSET and body_version is not None:
        return body_version
    return if_match


def check_version(current_version: int, expected: int | None, current: Any) -> None:
    """Raise 409 with ``current`` when ``expected`` is given and stale."""
    if expected is not None and expected != current_version:
        raise StaleVersion(current=current)


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def board_etag(version: int, seq: int, members: int, member_versions: int) -> str:
    """The ``ETag`` of ``GET /boards/{id}``: it changes whenever the body can (see
    ``persistence.boards.read.BoardTag``). It starts with the board's version, so it also serves
    as ``If-Match`` for ``PATCH``/``DELETE /boards/{id}``, which compare that part."""
    return f'"{version}.{seq}.{members}.{member_versions}"'


def none_match(header: str, current: str) -> bool:
    """Whether ``If-None-Match: header`` matches the ``current`` ETag (RFC 9110 §13.1.2: ``*`` or a
    list of entity tags, compared weakly). A header that is not such a list matches nothing."""
    if header.strip() == "*":
        return True
    opaque = current.removeprefix("W/").strip('"')
    position, end = 0, len(header)
    while position < end:
        found = _ENTITY_TAG.match(header, position)
        if found is None:
            return False
        if found.group(1) == opaque:
            return True
        position = found.end()
    return False
