"""Operator tasks run from the CLI."""

from __future__ import annotations

from sqlalchemy import func, select

from persistence.db import create_engine, ensure_migrated
from persistence.models import User
from server.auth import passwords
from server.auth.service import AccountService, normalize_email
from server.errors import Conflict
from server.settings import Settings


async def create_admin_account(settings: Settings, *, email: str, username: str, password: str) -> bool:
    """Create an admin, or promote the user with ``email``. True when created."""
    passwords.configure_from(settings)
    from sqlalchemy.ext.asyncio import async_sessionmaker

    engine = create_engine(settings.effective_database_url)
    try:
        await ensure_migrated(engine, settings.effective_database_url, auto=settings.is_sqlite)
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            existing = await session.scalar(select(User).where(User.email == normalize_email(email)))
            accounts = AccountService(session, settings)
            if existing is not None:
                existing.role = "admin"
                existing.version += 1
                accounts.audit(
                    "user.role_changed", subject_id=existing.id, data={"role": "admin", "by": "cli"}
                )
                await session.commit()
                return False
            accounts.validate_new_account(normalize_email(email), username, password)
            if await session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
                raise Conflict("That username is taken.")
            user = User(
                email=normalize_email(email),
                username=username,
                display_name=username,
                password_hash=await passwords.hash_password(password),
                role="admin",
            )
            session.add(user)
            await session.flush()
            accounts.audit("user.created_admin", subject_id=user.id, data={"by": "cli"})
            await session.commit()
            return True
    finally:
        await engine.dispose()
