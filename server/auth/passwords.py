"""Password hashing (argon2id via argon2-cffi) and password rules."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

if TYPE_CHECKING:
    from server.settings import Settings

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the login names no user, so that both paths cost the same time.
_DUMMY_HASH = _hasher.hash("corkboard-dummy-password")


def configure_from(settings: Settings) -> None:
    configure(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )


def configure(*, time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Set the argon2id parameters (settings ``PASSWORD_HASH_*``). Hashes made with other
    parameters still verify, and are replaced at the user's next login."""
    global _hasher, _DUMMY_HASH
    if (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism) == (time_cost, memory_kib, parallelism):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _DUMMY_HASH = _hasher.hash("corkboard-dummy-password")


COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "1234567890",
        "qwertyuiop",
        "letmein123",
        "iloveyou12",
        "welcome123",
        "admin12345",
        "corkboard1",
        "changeme123",
        "trustno1234",
    }
)


def password_problems(password: str, *, min_length: int, username: str = "", email: str = "") -> list[str]:
    """Rules: length, not all one character class, not common, not the user's own name or email."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters")
    if len(password) > 256:
        problems.append("must be at most 256 characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        problems.append("is too common or too simple")
    if (username and username.lower() in lowered) or (email and email.split("@")[0].lower() == lowered):
        problems.append("must not contain your username or email")
    return problems


def _hash(password: str) -> str:
    return _hasher.hash(password)


def _verify(hash_: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, new hash when the parameters changed and the hash should be replaced)."""
    target = hash_ or _DUMMY_HASH
    try:
        _hasher.verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if hash_ is None:
        return False, None
    return True, (_hasher.hash(password) if _hasher.check_needs_rehash(hash_) else None)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hash, password)


async def verify_password(hash_: str | None, password: str) -> tuple[bool, str | None]:
    """Check ``password``; ``hash_=None`` burns the same time and fails (no user enumeration)."""
    return await asyncio.to_thread(_verify, hash_, password)
