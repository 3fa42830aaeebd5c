"""Login throttling per (account, client address), and the mail limits of the account routes.

Locking an account after N wrong passwords lets anyone lock anyone out. Here failures are counted
per (account, client address): ``LOGIN_MAX_FAILURES`` are free, then each further try from that
address waits ``LOGIN_DELAY_SECONDS``, doubling with each failure up to ``LOCKOUT_SECONDS``; a
success clears the count. Until the wait is over a login from that address answers 423 with
``Retry-After``, the right password included, while the owner logging in from elsewhere is not
slowed. Logins that match no account are throttled the same way (keyed by the login as typed), so
a 423 tells nothing about which logins exist.

Counts live in Redis when it is configured (``INCR`` and ``SET NX``: atomic across instances) and in
memory otherwise (the embedded default is one process). A try is counted before the password is
checked and taken back on success, and past the free failures a try must win the gate (``SET NX``
with the wait as its lifetime): so a burst of concurrent guesses gets no more tries than guesses
one at a time would. A store outage lets logins through unthrottled (logged), like the other guards.
"""

from __future__ import annotations

import time
from typing import Protocol
from uuid import UUID

import structlog
from redis.asyncio import Redis

from server.auth.base import normalize_email
from server.auth.tokens import hash_secret
from server.errors import Locked
from server.ratelimit import Counter, Quota
from server.settings import Settings
from server.stores import STORE_ERRORS

log = structlog.get_logger("corkboard.auth.throttle")

_DAY = 24 * 3600
HOUR = 3600


class ThrottleStore(Protocol):
    async def incr(self, key: str, ttl: int) -> int: ...
    async def decr(self, key: str) -> None: ...
    async def acquire(self, key: str, seconds: int) -> int | None:
        """Take the gate ``key`` for ``seconds``: None when taken, else the seconds it is held for."""

    async def hold(self, key: str, seconds: int) -> None: ...
    async def held_for(self, key: str) -> int | None: ...
    async def clear(self, *keys: str) -> None: ...


class RedisThrottleStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:throttle:"

    async def incr(self, key: str, ttl: int) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, ttl)
            count, _ = await pipe.execute()
        return int(count)

    async def decr(self, key: str) -> None:
        await self.redis.decr(self.prefix + key)

    async def acquire(self, key: str, seconds: int) -> int | None:
        if await self.redis.set(self.prefix + key, 1, ex=seconds, nx=True):
            return None
        return await self.held_for(key) or 1

    async def hold(self, key: str, seconds: int) -> None:
        await self.redis.set(self.prefix + key, 1, ex=seconds)

    async def held_for(self, key: str) -> int | None:
        ttl = int(await self.redis.ttl(self.prefix + key))
        return ttl if ttl > 0 else None

    async def clear(self, *keys: str) -> None:
        await self.redis.delete(*(self.prefix + k for k in keys))


class MemoryThrottleStore:
    """For the embedded default (one process); expired entries are dropped as they are met."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)

    def _get(self, key: str) -> int | None:
        entry = self.values.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self.values[key]
            return None
        return entry[0]

    async def incr(self, key: str, ttl: int) -> int:
        value = (self._get(key) or 0) + 1
        self.values[key] = (value, time.monotonic() + ttl)
        if len(self.values) > 100_000:
            for stale in [k for k, (_, at) in self.values.items() if at <= time.monotonic()]:
                del self.values[stale]
        return value

    async def decr(self, key: str) -> None:
        if (value := self._get(key)) is not None:
            self.values[key] = (value - 1, self.values[key][1])

    async def acquire(self, key: str, seconds: int) -> int | None:
        held = await self.held_for(key)
        if held is not None:
            return held
        await self.hold(key, seconds)
        return None

    async def hold(self, key: str, seconds: int) -> None:
        self.values[key] = (1, time.monotonic() + seconds)

    async def held_for(self, key: str) -> int | None:
        if self._get(key) is None:
            return None
        return max(1, int(self.values[key][1] - time.monotonic()) + 1)

    async def clear(self, *keys: str) -> None:
        for key in keys:
            self.values.pop(key, None)


def throttle_store(redis: Redis | None, prefix: str) -> ThrottleStore:
    return RedisThrottleStore(redis, prefix) if redis is not None else MemoryThrottleStore()


class LoginAttempt:
    """One login try, counted: :meth:`failed` or :meth:`succeeded` once the password is checked."""

    def __init__(self, throttle: LoginThrottle, key: str, number: int) -> None:
        self.throttle = throttle
        self.key = key
        self.number = number

    async def failed(self) -> bool:
        """Count the failure; True when it is the one that starts making tries from this address
        wait (the last free one), for the audit log."""
        return await self.throttle._failed(self.key, self.number)

    async def succeeded(self) -> None:
        await self.throttle._succeeded(self.key)


class LoginThrottle:
    def __init__(self, store: ThrottleStore, settings: Settings) -> None:
        self.store = store
        self.free = settings.login_max_failures
        self.first_delay = settings.login_delay_seconds
        self.longest_delay = settings.lockout_seconds

    @staticmethod
    def key(user_id: UUID | None, login: str, ip: str, password_hash: str = "") -> str:
        """Per account (whichever login named it) and client address; an unknown login by the
        login as typed, normalized as the lookup normalizes it. The password hash is part of an
        account's key, so a password reset or change starts every address afresh."""
        if user_id is not None:
            who = f"a:{user_id}:{hash_secret(password_hash)[:16]}"
        else:
            login = login.strip()
            who = "u:" + hash_secret(normalize_email(login) if "@" in login else login.lower())
        return f"{who}:{hash_secret(ip)[:32]}"

    def delay(self, failures_past_free: int) -> int:
        """The wait after the ``failures_past_free``-th failure beyond the free ones (1, 2, ...)."""
        exponent = min(failures_past_free - 1, 40)
        return int(min(self.longest_delay, self.first_delay * 2**exponent))

    async def begin(self, key: str) -> LoginAttempt | None:
        """Count a try, or raise :class:`Locked` while this (account, address) must wait. None when
        the store is unreachable (the try goes through uncounted)."""
        try:
            held = await self.store.held_for(f"{key}:gate")
            if held is not None:
                raise Locked(held)
            number = await self.store.incr(f"{key}:n", max(_DAY, self.longest_delay))
            if number > self.free:
                held = await self.store.acquire(f"{key}:gate", self.delay(number - self.free))
                if held is not None:
                    await self.store.decr(f"{key}:n")  # a refused try is no guess: not counted
                    raise Locked(held)
        except STORE_ERRORS as exc:
            log.warning("throttle.unavailable", error=type(exc).__name__)
            return None
        return LoginAttempt(self, key, number)

    async def _failed(self, key: str, number: int) -> bool:
        if number < self.free:
            return False
        try:
            await self.store.hold(f"{key}:gate", self.delay(number - self.free + 1))
        except STORE_ERRORS as exc:
            log.warning("throttle.unavailable", error=type(exc).__name__)
        return number == self.free

    async def _succeeded(self, key: str) -> None:
        try:
            await self.store.clear(f"{key}:n", f"{key}:gate")
        except STORE_ERRORS as exc:
            log.warning("throttle.unavailable", error=type(exc).__name__)


class MailLimits:
    """Mails sent by the account routes: at most ``MAIL_PER_ADDRESS_PER_HOUR`` to one address and
    ``MAIL_PER_ACCOUNT_PER_HOUR`` on behalf of one account. Counted whether or not the address has
    an account (so a 429 tells nothing), before anything changes."""

    def __init__(self, counter: Counter, settings: Settings) -> None:
        self.quota = Quota(
            counter, length=HOUR, detail="Too many mails for this address or account; try again later."
        )
        self.per_address = settings.mail_per_address_per_hour
        self.per_account = settings.mail_per_account_per_hour
        self.lookups = Quota(
            counter, length=HOUR, detail="Too many lookups by email address; try again later."
        )
        self.lookups_per_account = settings.email_lookups_per_hour

    async def take(self, *, address: str, account: UUID | None = None) -> None:
        checks = [("mail:to:" + hash_secret(normalize_email(address)), self.per_address)]
        if account is not None:
            checks.append((f"mail:by:{account}", self.per_account))
        await self.quota.take(*checks)

    async def email_lookup(self, account: UUID) -> None:
        """One lookup of an account by email address (a board member added by email) on behalf of
        ``account``: at most ``EMAIL_LOOKUPS_PER_HOUR``, so it is no way to sift address lists."""
        await self.lookups.take((f"lookup:by:{account}", self.lookups_per_account))
