"""Scheduled housekeeping: expired sessions, spent tokens, and (with the event log) old events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_

from persistence.models import AuthSession, OneTimeToken, RefreshToken
from server.jobs.base import deps_of, log

# Spent refresh tokens are kept a day so that a replayed one is still recognised (and revokes its
# session) rather than looking merely unknown; ended sessions stay a day for the sessions list.
GRACE = timedelta(days=1)


async def purge_expired(ctx: dict[str, Any]) -> dict[str, int]:
    """Delete ended sessions, spent refresh tokens, used or expired one-time tokens, old events."""
    deps = deps_of(ctx)
    now = datetime.now(UTC)
    counts: dict[str, int] = {}
    async with deps.sessions() as session, session.begin():
        result = await session.execute(
            delete(RefreshToken).where(
                RefreshToken.spent_at.is_not(None), RefreshToken.spent_at < now - GRACE
            )
        )
        counts["refresh_tokens"] = result.rowcount  # type: ignore[attr-defined]
        result = await session.execute(
            delete(AuthSession).where(
                or_(AuthSession.expires_at < now - GRACE, AuthSession.revoked_at < now - GRACE)
            )
        )
        counts["sessions"] = result.rowcount  # type: ignore[attr-defined]
        result = await session.execute(
            delete(OneTimeToken).where(or_(OneTimeToken.used_at.is_not(None), OneTimeToken.expires_at < now))
        )
        counts["one_time_tokens"] = result.rowcount  # type: ignore[attr-defined]
        counts["events"] = await _purge_events(
            session, now - timedelta(days=deps.settings.event_retention_days)
        )
    log.info("jobs.purged", **counts)
    return counts


async def _purge_events(session: Any, before: datetime) -> int:
    """Board events older than the retention window (``boards.seq`` keeps counting: seqs stay gapless
    for new events; a client asking to replay from a purged seq gets ``resync``)."""
    from persistence.models import BoardEvent

    result = await session.execute(delete(BoardEvent).where(BoardEvent.at < before))
    return int(result.rowcount)
