"""SessionCache on its own: age, size, and what each control message forgets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from persistence.events import BoardDeleted, SessionsRevoked, UsersChanged
from persistence.models import User
from server.auth import sessioncache
from server.auth.sessioncache import SessionCache
from server.settings import SettingsError, load_settings


def user() -> User:
    return User(
        id=uuid.uuid4(), email="a@example.test", username="a", password_hash="x", role="user", is_active=True
    )


def test_an_entry_is_used_until_its_age_passes_the_ttl(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(sessioncache.time, "monotonic", lambda: clock[0])
    cache = SessionCache(ttl=30)
    sid, u = uuid.uuid4(), user()
    cache.put(sid, datetime.now(UTC) + timedelta(hours=1), u, generation=cache.generation)
    clock[0] += 29.9
    entry = cache.get(sid)
    assert entry is not None
    assert entry.user_id == u.id
    assert dict(zip(sessioncache._USER_COLUMNS, entry.user_values, strict=True))["username"] == "a"
    clock[0] += 0.1
    assert cache.get(sid) is None
    assert len(cache) == 0


def test_the_oldest_entries_go_past_the_size():
    cache = SessionCache(ttl=30, size=3)
    sids = [uuid.uuid4() for _ in range(5)]
    for sid in sids:
        cache.put(sid, None, user(), generation=cache.generation)
    assert len(cache) == 3
    assert [cache.get(s) is not None for s in sids] == [False, False, True, True, True]


def test_controls_forget_sessions_users_and_everything_after_a_broker_outage():
    cache = SessionCache(ttl=30)
    alice, bob = user(), user()
    a1, a2, b1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for sid, u in ((a1, alice), (a2, alice), (b1, bob)):
        cache.put(sid, None, u, generation=cache.generation)
    cache.control(BoardDeleted(board_id=uuid.uuid4()))
    assert len(cache) == 3
    cache.control(SessionsRevoked(session_ids=[a1]))
    assert cache.get(a1) is None
    assert cache.get(a2) is not None
    cache.control(UsersChanged(user_ids=[alice.id]))
    assert cache.get(a2) is None
    assert cache.get(b1) is not None
    cache.broker_reconnected()
    assert len(cache) == 0


def test_a_session_read_while_a_revocation_arrived_is_not_remembered():
    cache = SessionCache(ttl=30)
    sid = uuid.uuid4()
    before_the_read = cache.generation
    cache.control(SessionsRevoked(session_ids=[sid]))  # committed after the read, arrived before its answer
    cache.put(sid, None, user(), generation=before_the_read)
    assert cache.get(sid) is None
    cache.put(sid, None, user(), generation=cache.generation)
    assert cache.get(sid) is not None


def test_ttl_zero_turns_it_off():
    cache = SessionCache(ttl=0)
    cache.put(uuid.uuid4(), None, user(), generation=cache.generation)
    assert len(cache) == 0
    assert not cache.enabled


def test_a_negative_ttl_is_refused():
    with pytest.raises(SettingsError, match="AUTH_CACHE_SECONDS"):
        load_settings({"AUTH_CACHE_SECONDS": "-1"})


def test_nothing_is_read_or_remembered_while_the_broker_is_down():
    up = [True]
    cache = SessionCache(ttl=30, broker_connected=lambda: up[0])
    sid, other = uuid.uuid4(), uuid.uuid4()
    cache.put(sid, None, user(), generation=cache.generation)
    up[0] = False  # a revocation could be published now and never reach this process
    assert cache.get(sid) is None
    cache.put(other, None, user(), generation=cache.generation)
    up[0] = True
    assert cache.get(other) is None  # read while down: not remembered
    cache.broker_reconnected()
    assert cache.get(sid) is None  # and what came before the outage is dropped on reconnect
