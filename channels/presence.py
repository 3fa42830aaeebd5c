"""Cluster-wide presence in the Phoenix Presence format, with coalesced diffs.

Each process keeps the cluster's view of every topic it has sockets on:
``{user_id: {phx_ref: meta}}``. Changes come from local sockets (track / untrack / update) and
from other processes (``PresenceMsg`` through the broker); both land in a per-topic pending diff
that is flushed once per ``presence_coalesce_ms`` as ONE ``presence_diff`` frame for the topic.

With Redis, each process also writes its own entries to a sorted set per topic
(``{prefix}:presence:{topic}``, score = expiry time) and refreshes them every ``ttl / 3``; every
few seconds it reads the set back and turns any difference with its view into a diff. A crashed
process stops refreshing, so its entries expire (at most ``2/3 ttl`` after its last refresh)
and the survivors emit the leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from channels import protocol
from channels.bus import PresenceEntry, PresenceMsg

log = logging.getLogger("corkboard.presence")
Metas = dict[str, dict[str, Any]]  # phx_ref -> meta
_member_codec = msgspec.json.Encoder()
_member_decoder = msgspec.json.Decoder(PresenceEntry)


class _Pending:
    __slots__ = ("joins", "leaves")

    def __init__(self) -> None:
        self.joins: dict[str, Metas] = {}
        self.leaves: dict[str, Metas] = {}


def _grouped(metas_by_user: dict[str, Metas]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {user: {"metas": list(metas.values())} for user, metas in metas_by_user.items() if metas}


class PresenceTracker:
    """See the module docstring. ``broadcast(topic, text)`` writes to the topic's live local sockets;
    ``publish(topic, msg)`` sends a message to the other processes."""

    def __init__(
        self,
        *,
        instance_id: str,
        broadcast: Callable[[str, str], int],
        publish: Callable[[str, PresenceMsg], None],
        redis: Redis | None,
        prefix: str,
        ttl: int,
        coalesce_ms: int,
    ) -> None:
        self.instance_id = instance_id
        self.broadcast = broadcast
        self.publish = publish
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.coalesce = coalesce_ms / 1000
        self.state: dict[str, dict[str, Metas]] = {}
        self.local: dict[str, dict[str, bytes]] = {}  # topic -> ref -> stored member
        self._pending: dict[str, _Pending] = {}
        self._refs = itertools.count(1)
        self.diffs_sent = 0

    def new_ref(self) -> str:
        return f"{self.instance_id}.{next(self._refs)}"

    def key(self, topic: str) -> str:
        return f"{self.prefix}:presence:{topic}"

    # ------------------------------------------------------------------ local changes
    async def load(self, topic: str) -> None:
        """Read the cluster's entries for a topic this process just started serving."""
        if topic in self.state:
            return
        self.state[topic] = {}
        if self.redis is None:
            return
        try:
            members = await self.redis.zrangebyscore(self.key(topic), time.time(), "+inf")
        except (RedisError, OSError):
            return
        users = self.state[topic]
        for member in members:
            entry = _member_decoder.decode(member)  # type: ignore[arg-type]
            users.setdefault(entry.user_id, {})[entry.ref] = entry.meta

    def track(self, topic: str, user_id: str, meta: dict[str, Any], ref: str | None = None) -> str:
        ref = ref or self.new_ref()
        full = {**meta, "phx_ref": ref, "online_at": int(time.time() * 1000)}
        entry = PresenceEntry(user_id=user_id, ref=ref, meta=full)
        member = _member_codec.encode(entry)
        self.local.setdefault(topic, {})[ref] = member
        self._apply(topic, [entry], [])
        self.publish(topic, PresenceMsg(origin=self.instance_id, topic=topic, joins=[entry]))
        self._store(topic, add=[member])
        return ref

    def untrack(self, topic: str, ref: str) -> None:
        member = self.local.get(topic, {}).pop(ref, None)
        if member is None:
            return
        entry = _member_decoder.decode(member)
        self._apply(topic, [], [entry])
        self.publish(topic, PresenceMsg(origin=self.instance_id, topic=topic, leaves=[entry]))
        self._store(topic, remove=[member])

    def update(self, topic: str, ref: str, user_id: str, meta: dict[str, Any]) -> str:
        """Phoenix semantics: the old meta leaves, the new one joins under a new ``phx_ref``."""
        self.untrack(topic, ref)
        return self.track(topic, user_id, {**meta, "phx_ref_prev": ref})

    def forget(self, topic: str) -> None:
        """No local socket is left on ``topic``: stop keeping its view."""
        if not self.local.get(topic):
            self.local.pop(topic, None)
            self.state.pop(topic, None)
            self._pending.pop(topic, None)

    def entries_of(self, topic: str, user_id: str) -> int:
        """How many presence entries the user has on the topic, cluster-wide as this process sees it."""
        return len(self.state.get(topic, {}).get(user_id, ()))

    def state_payload(self, topic: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
        return _grouped(self.state.get(topic, {}))

    # ------------------------------------------------------------------ remote changes
    def apply_remote(self, message: PresenceMsg) -> None:
        if message.origin == self.instance_id or message.topic not in self.state:
            return
        self._apply(message.topic, message.joins, message.leaves)

    def _apply(self, topic: str, joins: list[PresenceEntry], leaves: list[PresenceEntry]) -> None:
        users = self.state.get(topic)
        if users is None:
            return
        pending = self._pending.get(topic)
        if pending is None:
            pending = self._pending[topic] = _Pending()
            asyncio.get_running_loop().call_later(self.coalesce, self._flush, topic)
        for e in joins:
            users.setdefault(e.user_id, {})[e.ref] = e.meta
            pending.joins.setdefault(e.user_id, {})[e.ref] = e.meta
        for e in leaves:
            metas = users.get(e.user_id)
            if metas is not None:
                metas.pop(e.ref, None)
                if not metas:
                    del users[e.user_id]
            joined = pending.joins.get(e.user_id)
            if joined is not None:
                joined.pop(e.ref, None)
            # Still sent: a socket that joined inside the window saw it in presence_state.
            pending.leaves.setdefault(e.user_id, {})[e.ref] = e.meta

    def _flush(self, topic: str) -> None:
        pending = self._pending.pop(topic, None)
        if pending is None or topic not in self.state:
            return
        joins, leaves = _grouped(pending.joins), _grouped(pending.leaves)
        if not joins and not leaves:
            return
        text = protocol.push(topic, "presence_diff", {"joins": joins, "leaves": leaves})
        self.diffs_sent += self.broadcast(topic, text)

    # ------------------------------------------------------------------ Redis upkeep
    def _store(self, topic: str, *, add: list[bytes] = (), remove: list[bytes] = ()) -> None:  # type: ignore[assignment]
        if self.redis is None:
            return
        asyncio.get_running_loop().create_task(self._write(topic, add, remove))

    async def _write(self, topic: str, add: list[bytes], remove: list[bytes]) -> None:
        assert self.redis is not None
        expires = time.time() + self.ttl * 2 / 3
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if add:
                    pipe.zadd(self.key(topic), dict.fromkeys(add, expires))
                if remove:
                    pipe.zrem(self.key(topic), *remove)
                pipe.expire(self.key(topic), self.ttl * 2)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("presence write failed: %s", exc)

    async def refresh(self) -> None:
        """Extend the expiry of this process's entries (every ttl/3)."""
        if self.redis is None:
            return
        for topic, members in list(self.local.items()):
            if members:
                await self._write(topic, list(members.values()), [])

    async def sync(self) -> None:
        """Reconcile the local view with Redis: entries that expired leave, unseen ones join."""
        if self.redis is None:
            return
        now = time.time()
        for topic in list(self.state):
            try:
                await self.redis.zremrangebyscore(self.key(topic), "-inf", now)
                members = await self.redis.zrangebyscore(self.key(topic), now, "+inf")
            except (RedisError, OSError):
                return
            decoded = [_member_decoder.decode(m) for m in members]  # type: ignore[arg-type]
            stored = {e.ref: e for e in decoded}
            mine = self.local.get(topic, {})
            users = self.state.get(topic)
            if users is None:
                continue
            known = {ref: (user, meta) for user, metas in users.items() for ref, meta in metas.items()}
            leaves = [
                PresenceEntry(user_id=user, ref=ref, meta=meta)
                for ref, (user, meta) in known.items()
                if ref not in stored and ref not in mine
            ]
            joins = [e for ref, e in stored.items() if ref not in known]
            if joins or leaves:
                self._apply(topic, joins, leaves)

    async def withdraw_all(self) -> None:
        """Shutdown: remove this process's entries and tell the others at once."""
        for topic, members in list(self.local.items()):
            entries = [_member_decoder.decode(m) for m in members.values()]
            if entries:
                self.publish(topic, PresenceMsg(origin=self.instance_id, topic=topic, leaves=entries))
                if self.redis is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self.redis.zrem(self.key(topic), *members.values())
        self.local.clear()
