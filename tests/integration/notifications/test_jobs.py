"""The job queue end to end: mail through retried jobs, scheduled purges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import AuthSession, OneTimeToken
from tests.integration.notifications.conftest import in_app
from tests.support.factories import make_account, unique_name


async def test_verification_mail_is_retried_until_smtp_accepts(nclient, mailbox):
    username = unique_name()
    address = f"{username}@example.test"
    mailbox.refuse[address] = 2  # the SMTP server says "try later" twice
    response = await nclient.post(
        "/api/v1/auth/register",
        json={"email": address, "username": username, "password": "correct horse battery staple"},
    )
    assert response.status_code == 201
    [mail] = await mailbox.wait_for(address, skip_account_mail=False)
    assert mailbox.refuse[address] == 0
    assert "Verify" in mail.subject
    assert "verify-email?token=" in mail.part("plain")


async def test_purge_removes_ended_sessions_and_spent_tokens(nclient, napp, jobs):
    account = await make_account(nclient)
    keep = await make_account(nclient)
    assert (await nclient.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
    engine = napp.state.db_engine
    long_ago = datetime.now(UTC) - timedelta(days=3)

    async def age_the_session() -> None:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(
                update(AuthSession).where(AuthSession.user_id == UUID(account.id)).values(revoked_at=long_ago)
            )

    async def rows(model, user_id):
        async with AsyncSession(engine) as session:
            return (await session.execute(select(model.id).where(model.user_id == UUID(user_id)))).all()

    await in_app(nclient, age_the_session)
    counts = await in_app(nclient, jobs.run_now, "purge_expired")
    assert counts["sessions"] >= 1
    mine = await in_app(nclient, rows, AuthSession, account.id)
    theirs = await in_app(nclient, rows, AuthSession, keep.id)
    # the registration's verification token expires in 48 h and is unused: it stays
    tokens = await in_app(nclient, rows, OneTimeToken, keep.id)
    assert mine == []
    assert len(theirs) == 1
    assert len(tokens) == 1
    assert (await nclient.get("/api/v1/auth/me", headers=keep.headers)).status_code == 200


async def test_purge_drops_board_events_beyond_retention(nclient, napp, jobs):
    from persistence.models import BoardEvent
    from tests.integration.notifications import boards_http as b

    alice = await make_account(nclient)
    board_id = await b.board(nclient, alice)
    await b.a_list(nclient, board_id, alice)
    await b.a_list(nclient, board_id, alice)
    before = (
        await nclient.get(f"/api/v1/boards/{board_id}/events?after_seq=0", headers=alice.headers)
    ).json()
    assert [e["seq"] for e in before["items"]] == [1, 2, 3]

    async def age_first_two() -> None:
        async with AsyncSession(napp.state.db_engine) as session, session.begin():
            await session.execute(
                update(BoardEvent)
                .where(BoardEvent.board_id == UUID(board_id), BoardEvent.seq <= 2)
                .values(at=datetime.now(UTC) - timedelta(days=91))
            )

    await in_app(nclient, age_first_two)
    counts = await in_app(nclient, jobs.run_now, "purge_expired")
    assert counts["events"] >= 2
    after = (await nclient.get(f"/api/v1/boards/{board_id}/events?after_seq=0", headers=alice.headers)).json()
    assert [e["seq"] for e in after["items"]] == [3]
    # the board itself is untouched, and its numbering goes on
    assert (await nclient.get(f"/api/v1/boards/{board_id}", headers=alice.headers)).json()["seq"] == 3


async def test_a_worker_stopped_before_it_began_stops(redis_url, run_id):
    """A server stopped the moment it started (server/jobs/redisq.py): the in-process SAQ worker's
    task had not run yet when ``stop()`` came, then began and waited for a stop already past."""
    import asyncio

    from server.jobs import SaqRunner
    from server.jobs.registry import CRONS, SPECS

    for i in range(3):
        runner = SaqRunner(redis_url, f"cbtest:{run_id}:quick{i}", dict(SPECS), list(CRONS), in_process=True)
        await runner.start()
        # Stopped at once, in this task (wait_for's own task would let the worker's run first). A
        # hang here is the bug; the bound only turns it into a failure.
        async with asyncio.timeout(60):
            await runner.stop()
        assert runner._worker_task is not None
        assert runner._worker_task.done()
