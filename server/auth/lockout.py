"""Lockout bookkeeping for logins that match no account.

A real account locks after ``LOGIN_MAX_FAILURES`` wrong passwords (``users.locked_until``). If an
unknown login never locked, "423 after N failures" would tell an attacker which logins exist; so
unknown logins are counted too, in the app's store (Redis when configured, so every instance
agrees), and lock the same way. Nothing is written to the database for them.
"""

from __future__ import annotations

import time

import msgspec
from litestar.stores.base import Store

from server.auth.tokens import hash_secret

_DAY = 24 * 3600


class _Entry(msgspec.Struct):
    failures: int = 0
    locked_until: float = 0.0


class UnknownLoginLockout:
    def __init__(self, store: Store, *, max_failures: int, lockout_seconds: int) -> None:
        self.store = store
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds

    @staticmethod
    def _key(login: str) -> str:
        return "unknown:" + hash_secret(login.strip().lower())

    async def _load(self, key: str) -> _Entry:
        raw = await self.store.get(key)
        return msgspec.json.decode(raw, type=_Entry) if raw else _Entry()

    async def locked_for(self, login: str) -> int | None:
        """Seconds until ``login`` may be tried again, or None when it is not locked."""
        entry = await self._load(self._key(login))
        remaining = entry.locked_until - time.time()
        return int(remaining) + 1 if remaining > 0 else None

    async def record_failure(self, login: str) -> None:
        key = self._key(login)
        entry = await self._load(key)
        entry.failures += 1
        if entry.failures >= self.max_failures:
            entry = _Entry(failures=0, locked_until=time.time() + self.lockout_seconds)
        await self.store.set(key, msgspec.json.encode(entry), expires_in=max(_DAY, self.lockout_seconds))
