"""Access tokens (JWT, HS256) bound to a server-side session, and opaque secrets stored as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from uuid import UUID

import jwt

PAT_PREFIX = "cbp_"
REFRESH_PREFIX = "cbr_"
ISSUER = "corkboard"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: UUID
    session_id: UUID
    expires_at: datetime


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy random secret (not a password: a fast hash is right here)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_access_token(key: str, user_id: UUID, session_id: UUID, ttl: int) -> tuple[str, int]:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "iss": ISSUER,
        "typ": "access",
    }
    return jwt.encode(claims, key, algorithm="HS256"), ttl


def decode_access_token(key: str, token: str, *, verify_exp: bool = True) -> AccessClaims | None:
    """The claims of a valid token, or None (bad signature, malformed, expired when ``verify_exp``)."""
    claims = _verified_claims(key, token)
    if claims is None or (verify_exp and claims.expires_at <= datetime.now(UTC)):
        return None
    return claims


@lru_cache(maxsize=4096)
def _verified_claims(key: str, token: str) -> AccessClaims | None:
    """Signature, issuer and claims checked once per token string, expiry left to the caller.

    Every request presents its token twice (the rate limiter's identity, then authentication) and
    a client presents the same token for its whole lifetime, so the HMAC and JSON parsing were a
    visible share of a cheap request's CPU. The result depends only on ``(key, token)``; expiry is
    checked on each use, and revocation is the session row's job, which is read on every request.
    """
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "sid"], "verify_exp": False},
        )
        if claims.get("typ") != "access":
            return None
        return AccessClaims(
            user_id=UUID(claims["sub"]),
            session_id=UUID(claims["sid"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError, OverflowError, OSError):
        return None  # OverflowError / OSError: an ``exp`` past what a datetime holds
