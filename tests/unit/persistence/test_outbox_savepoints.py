"""A rolled-back SAVEPOINT must not drop what the enclosing transaction queued for after commit."""

from __future__ import annotations

import uuid

import msgspec
from sqlalchemy import String, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from persistence.afterwork import JOBS_KEY, queue_job
from persistence.events import RecordingSink, UserMessage
from persistence.outbox import SINK_KEY, queue_control


class _Base(DeclarativeBase):
    pass


class Thing(_Base):
    __tablename__ = "t"
    k: Mapped[str] = mapped_column(String, primary_key=True)


class Jobs:
    def __init__(self) -> None:
        self.names: list[str] = []

    def enqueue_soon(self, name, *, key=None, delay=0, **kwargs):
        self.names.append(name)


def _message() -> UserMessage:
    return UserMessage(user_id=uuid.uuid4(), event="notification.created", payload=msgspec.Raw(b"{}"))


async def test_savepoint_rollback_keeps_the_outer_queue_and_real_rollback_drops_it():
    engine = create_async_engine("sqlite+aiosqlite://")
    sink, jobs = RecordingSink(), Jobs()
    async with AsyncSession(engine, info={SINK_KEY: sink, JOBS_KEY: jobs}) as session:
        async with session.begin():
            queue_control(session, _message())
            queue_job(session, "send_notification_email", notification_id="x")
            await session.execute(text("create table t (k text unique)"))
            await session.execute(text("insert into t values ('a')"))
            try:
                async with session.begin_nested():
                    await session.execute(text("insert into t values ('a')"))  # lost a unique race
            except IntegrityError:
                pass
            try:
                async with session.begin_nested():
                    session.add(Thing(k="a"))  # the same through a failing ORM flush
            except IntegrityError:
                pass
        assert len(sink.controls) == 1
        assert jobs.names == ["send_notification_email"]

        await session.begin()
        queue_control(session, _message())
        queue_job(session, "send_notification_email", notification_id="y")
        await session.rollback()
        async with session.begin():
            pass
        assert len(sink.controls) == 1
        assert jobs.names == ["send_notification_email"]
    await engine.dispose()
