"""Access token checks, including the cache of verified signatures: expiry is still checked on
every use, and a token signed with another key is never taken from the cache."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.auth import tokens

KEY = "unit-test-key-0123456789abcdef0123456789"


def test_valid_token_round_trips() -> None:
    user, session = uuid.uuid4(), uuid.uuid4()
    token, _ = tokens.issue_access_token(KEY, user, session, 60)
    claims = tokens.decode_access_token(KEY, token)
    assert claims is not None
    assert (claims.user_id, claims.session_id) == (user, session)


def test_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token, _ = tokens.issue_access_token(KEY, uuid.uuid4(), uuid.uuid4(), 60)
    assert tokens.decode_access_token(KEY, token) is not None  # verified and cached

    class Later(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return datetime.now(UTC) + timedelta(hours=2)

    monkeypatch.setattr(tokens, "datetime", Later)
    assert tokens.decode_access_token(KEY, token) is None
    # sockets may present an expired token (their session decides): still decoded
    assert tokens.decode_access_token(KEY, token, verify_exp=False) is not None


def test_other_key_and_tampering_are_refused() -> None:
    token, _ = tokens.issue_access_token(KEY, uuid.uuid4(), uuid.uuid4(), 60)
    assert tokens.decode_access_token(KEY, token) is not None
    assert tokens.decode_access_token(KEY + "x", token) is None
    head, body, sig = token.split(".")
    assert tokens.decode_access_token(KEY, f"{head}.{body}.{sig[:-2]}AA") is None
    assert tokens.decode_access_token(KEY, "not-a-jwt") is None
