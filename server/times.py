"""Times on the wire (SPEC §2, §6): every time in every response is RFC 3339 UTC, written with ``Z``.

Stored times are UTC (advanced-alchemy's ``DateTimeUTC`` columns, also on SQLite, whose driver
keeps no offset); times a client sends are turned into UTC as they are parsed, so the answer to a
write, and the event it records, show the same instant in the same form as any later read.
"""

from __future__ import annotations

from datetime import UTC, datetime


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
