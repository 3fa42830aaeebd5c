"""Accounts: registration, login with lockout, sessions with rotating refresh tokens, personal
access tokens, one-time mail tokens and the audit log. One transaction per public method."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from channels.events import SessionsRevoked
from persistence.models import AuditEvent, AuthSession, OneTimeToken, PersonalAccessToken, RefreshToken, User
from persistence.outbox import queue_control
from server.auth import passwords, tokens
from server.auth.lockout import UnknownLoginLockout
from server.errors import Conflict, FieldError, Gone, Locked, Unauthorized, ValidationFailed
from server.settings import Settings

USERNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{1,38}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user through a login session or through a personal access token."""

    user: User
    kind: str  # "session" | "pat"
    credential_id: UUID  # the session id, or the personal access token id
    scopes: frozenset[str]

    @property
    def user_id(self) -> UUID:
        return self.user.id

    @property
    def can_write(self) -> bool:
        return "write" in self.scopes

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: UUID


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A secret shown to its owner once (mail links, personal access tokens)."""

    secret: str
    record_id: UUID


def normalize_email(email: str) -> str:
    return email.strip().lower()


class AccountService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    # ------------------------------------------------------------------ audit
    def audit(
        self,
        action: str,
        *,
        actor_id: UUID | None = None,
        subject_id: UUID | None = None,
        ip: str = "",
        detail: str = "",
        data: dict[str, object] | None = None,
    ) -> None:
        self.session.add(
            AuditEvent(
                action=action, actor_id=actor_id, subject_id=subject_id, ip=ip, detail=detail, data=data or {}
            )
        )

    # ------------------------------------------------------------------ registration
    def validate_new_account(self, email: str, username: str, password: str) -> None:
        errors: list[FieldError] = []
        if not EMAIL_RE.match(email) or len(email) > 254:
            errors.append(FieldError("email", "is not a valid email address"))
        if not USERNAME_RE.match(username):
            errors.append(FieldError("username", "must be 2-39 characters: letters, digits, '_', '.', '-'"))
        errors.extend(
            FieldError("password", problem)
            for problem in passwords.password_problems(
                password, min_length=self.settings.password_min_length, username=username, email=email
            )
        )
        if errors:
            raise ValidationFailed(errors)

    async def register(
        self, *, email: str, username: str, password: str, display_name: str | None, ip: str = ""
    ) -> tuple[User, IssuedSecret | None]:
        """Create an account; returns it with its verification link.

        An email that already has an account gets the same 201 answer (a user that is never
        stored, with no link: ``None``), so registration tells nobody which addresses are
        registered; the caller mails the address's owner instead. Usernames are public, so a
        taken username is a plain 409.
        """
        email = normalize_email(email)
        username = username.strip()
        self.validate_new_account(email, username, password)
        if await self.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
            raise Conflict("That username is taken.")
        password_hash = await passwords.hash_password(password)  # on both paths: same cost, same timing
        user = User(
            id=uuid7(),
            email=email,
            username=username,
            display_name=display_name or username,
            password_hash=password_hash,
            role="user",
            is_active=True,
            version=1,
            created_at=utcnow(),
        )
        existing = await self.session.scalar(select(User.id).where(User.email == email))
        if existing is not None:
            self.audit("user.register_existing_email", subject_id=existing, ip=ip)
            await self.session.commit()
            return user, None
        self.session.add(user)
        await self.session.flush()
        verification = self.issue_one_time(user.id, "verify", self.settings.verify_token_ttl)
        self.audit("user.registered", actor_id=user.id, subject_id=user.id, ip=ip)
        await self.session.commit()
        return user, verification

    # ------------------------------------------------------------------ login
    async def find_by_login(self, login: str) -> User | None:
        login = login.strip()
        if "@" in login:
            query = select(User).where(User.email == normalize_email(login))
        else:
            query = select(User).where(func.lower(User.username) == login.lower())
        user: User | None = await self.session.scalar(query)
        return user

    async def login(
        self,
        *,
        login: str,
        password: str,
        ip: str = "",
        user_agent: str = "",
        unknown_logins: UnknownLoginLockout | None = None,
    ) -> TokenPair:
        """Check the password, count failures and lock the account, then open a session.

        Unknown users cost one argon2 verification too and get the same 401; with
        ``unknown_logins`` they also lock after the same number of failures, so a 423 does not
        reveal that an account exists.
        """
        user = await self.find_by_login(login)
        now = utcnow()
        locked_until = aware(user.locked_until) if user else None
        if user is not None and locked_until is not None and locked_until > now:
            # Still burn a verification so a locked account answers in the usual time.
            await passwords.verify_password(None, password)
            raise Locked(int((locked_until - now).total_seconds()) + 1)
        if user is None and unknown_logins is not None:
            retry_after = await unknown_logins.locked_for(login)
            if retry_after is not None:
                await passwords.verify_password(None, password)
                raise Locked(retry_after)
        ok, new_hash = await passwords.verify_password(user.password_hash if user else None, password)
        if user is None or not ok or not user.is_active:
            if user is not None:
                await self._count_failure(user, ip)
            else:
                if unknown_logins is not None:
                    await unknown_logins.record_failure(login)
                self.audit("login.failed", ip=ip, detail="unknown login")
                await self.session.commit()
            raise Unauthorized("Wrong login or password.")
        if new_hash:
            user.password_hash = new_hash
        user.failed_logins = 0
        user.locked_until = None
        pair = await self._open_session(user, ip=ip, user_agent=user_agent)
        self.audit("login.succeeded", actor_id=user.id, subject_id=user.id, ip=ip)
        await self.session.commit()
        return pair

    async def _count_failure(self, user: User, ip: str) -> None:
        # One UPDATE so concurrent failures all count.
        await self.session.execute(
            update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
        )
        await self.session.refresh(user, ["failed_logins"])
        self.audit("login.failed", subject_id=user.id, ip=ip)
        if user.failed_logins >= self.settings.login_max_failures:
            user.locked_until = utcnow() + timedelta(seconds=self.settings.lockout_seconds)
            user.failed_logins = 0
            self.audit("account.locked", subject_id=user.id, ip=ip)
        await self.session.commit()

    async def _open_session(self, user: User, *, ip: str, user_agent: str) -> TokenPair:
        auth_session = AuthSession(
            user_id=user.id,
            ip=ip[:64],
            user_agent=user_agent[:255],
            last_used_at=utcnow(),
            expires_at=utcnow() + timedelta(seconds=self.settings.refresh_token_ttl),
        )
        self.session.add(auth_session)
        await self.session.flush()
        return self._issue_pair(user.id, auth_session.id)

    def _issue_pair(self, user_id: UUID, session_id: UUID) -> TokenPair:
        refresh = tokens.new_secret(tokens.REFRESH_PREFIX)
        self.session.add(RefreshToken(session_id=session_id, token_hash=tokens.hash_secret(refresh)))
        access, ttl = tokens.issue_access_token(
            self.settings.secret_key, user_id, session_id, self.settings.access_token_ttl
        )
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl, session_id=session_id)

    # ------------------------------------------------------------------ refresh / logout
    async def refresh(self, refresh_token: str, *, ip: str = "") -> TokenPair:
        """Spend ``refresh_token`` for a new pair. A spent token presented again revokes the session."""
        row = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == tokens.hash_secret(refresh_token))
        )
        if row is None:
            raise Unauthorized("Invalid refresh token.")
        auth_session = await self.session.get(AuthSession, row.session_id)
        if auth_session is None or auth_session.revoked_at is not None:
            raise Unauthorized("This session has ended; log in again.")
        if row.spent_at is not None:
            await self._revoke_sessions([auth_session], reason="refresh_reuse")
            self.audit(
                "refresh.reused",
                subject_id=auth_session.user_id,
                ip=ip,
                data={"session_id": str(auth_session.id)},
            )
            await self.session.commit()
            raise Unauthorized("Refresh token reuse detected: the session is revoked; log in again.")
        expires_at = aware(auth_session.expires_at)
        if expires_at is not None and expires_at <= utcnow():
            raise Unauthorized("This session has expired; log in again.")
        # Spend it with a conditional UPDATE, so two concurrent refreshes cannot both win.
        spent = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.spent_at.is_(None))
            .values(spent_at=utcnow())
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            await self.session.rollback()
            raise Unauthorized("Invalid refresh token.")
        auth_session.last_used_at = utcnow()
        pair = self._issue_pair(auth_session.user_id, auth_session.id)
        await self.session.commit()
        return pair

    async def _revoke_sessions(self, sessions: list[AuthSession], *, reason: str) -> None:
        now = utcnow()
        live = [s for s in sessions if s.revoked_at is None]
        for s in live:
            s.revoked_at = now
            s.revoked_reason = reason
        if live:
            queue_control(self.session, SessionsRevoked(session_ids=[s.id for s in live]))

    async def logout(self, principal: Principal, *, everywhere: bool, ip: str = "") -> None:
        if everywhere:
            await self.revoke_user_sessions(principal.user_id, reason="logout_all")
        elif principal.kind == "session":
            current = await self.session.get(AuthSession, principal.credential_id)
            if current is not None:
                await self._revoke_sessions([current], reason="logout")
        self.audit(
            "logout",
            actor_id=principal.user_id,
            subject_id=principal.user_id,
            ip=ip,
            data={"all": everywhere},
        )
        await self.session.commit()

    async def revoke_user_sessions(self, user_id: UUID, *, reason: str, keep: UUID | None = None) -> None:
        """Revoke every live session of ``user_id`` but ``keep`` (no commit: part of a larger change)."""
        rows = await self.session.scalars(
            select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        )
        await self._revoke_sessions([s for s in rows if s.id != keep], reason=reason)

    async def list_sessions(self, user_id: UUID) -> list[AuthSession]:
        rows = await self.session.scalars(
            select(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .where(AuthSession.expires_at > utcnow())
            .order_by(AuthSession.created_at.desc())
        )
        return list(rows)

    async def revoke_session(self, principal: Principal, session_id: UUID, *, ip: str = "") -> None:
        target = await self.session.get(AuthSession, session_id)
        if target is None or target.user_id != principal.user_id or target.revoked_at is not None:
            raise Gone.not_found("session")
        await self._revoke_sessions([target], reason="revoked")
        self.audit(
            "session.revoked",
            actor_id=principal.user_id,
            subject_id=principal.user_id,
            ip=ip,
            data={"session_id": str(session_id)},
        )
        await self.session.commit()

    # ------------------------------------------------------------------ authentication
    async def authenticate(self, token: str, *, allow_expired_access: bool = False) -> Principal | None:
        """The principal behind an access token or personal access token, or None.

        ``allow_expired_access`` is for sockets: a socket lives as long as its session, and
        phoenix.js may reconnect with the token it was first given.
        """
        if token.startswith(tokens.PAT_PREFIX):
            return await self._authenticate_pat(token)
        claims = tokens.decode_access_token(
            self.settings.secret_key, token, verify_exp=not allow_expired_access
        )
        if claims is None:
            return None
        row = (
            await self.session.execute(
                select(AuthSession, User)
                .join(User, User.id == AuthSession.user_id)
                .where(AuthSession.id == claims.session_id)
            )
        ).first()
        if row is None:
            return None
        auth_session, user = row
        expires_at = aware(auth_session.expires_at)
        if (
            auth_session.revoked_at is not None
            or not user.is_active
            or user.id != claims.user_id
            or (expires_at is not None and expires_at <= utcnow())
        ):
            return None
        return Principal(
            user=user, kind="session", credential_id=auth_session.id, scopes=frozenset({"read", "write"})
        )

    async def _authenticate_pat(self, token: str) -> Principal | None:
        row = (
            await self.session.execute(
                select(PersonalAccessToken, User)
                .join(User, User.id == PersonalAccessToken.user_id)
                .where(PersonalAccessToken.token_hash == tokens.hash_secret(token))
            )
        ).first()
        if row is None:
            return None
        pat, user = row
        expires_at = aware(pat.expires_at)
        if (
            pat.revoked_at is not None
            or not user.is_active
            or (expires_at is not None and expires_at <= utcnow())
        ):
            return None
        now, last_used = utcnow(), aware(pat.last_used_at)
        if last_used is None or now - last_used > timedelta(seconds=60):
            # At most one write a minute per token: enough for "last used", cheap for busy bots.
            await self.session.execute(
                update(PersonalAccessToken).where(PersonalAccessToken.id == pat.id).values(last_used_at=now)
            )
            await self.session.commit()
        return Principal(user=user, kind="pat", credential_id=pat.id, scopes=frozenset(pat.scopes))

    # ------------------------------------------------------------------ personal access tokens
    async def create_pat(
        self, principal: Principal, *, name: str, scopes: list[str], expires_at: datetime | None, ip: str = ""
    ) -> tuple[PersonalAccessToken, str]:
        secret = tokens.new_secret(tokens.PAT_PREFIX)
        pat = PersonalAccessToken(
            user_id=principal.user_id,
            name=name,
            token_hash=tokens.hash_secret(secret),
            prefix=secret[:10],
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        self.session.add(pat)
        await self.session.flush()
        self.audit(
            "token.created",
            actor_id=principal.user_id,
            subject_id=principal.user_id,
            ip=ip,
            data={"token_id": str(pat.id), "scopes": pat.scopes},
        )
        await self.session.commit()
        return pat, secret

    async def list_pats(self, user_id: UUID) -> list[PersonalAccessToken]:
        rows = await self.session.scalars(
            select(PersonalAccessToken)
            .where(PersonalAccessToken.user_id == user_id, PersonalAccessToken.revoked_at.is_(None))
            .order_by(PersonalAccessToken.created_at.desc())
        )
        return list(rows)

    async def revoke_pat(self, principal: Principal, token_id: UUID, *, ip: str = "") -> None:
        pat = await self.session.get(PersonalAccessToken, token_id)
        if pat is None or pat.user_id != principal.user_id or pat.revoked_at is not None:
            raise Gone.not_found("token")
        pat.revoked_at = utcnow()
        queue_control(self.session, SessionsRevoked(session_ids=[pat.id]))
        self.audit(
            "token.revoked",
            actor_id=principal.user_id,
            subject_id=principal.user_id,
            ip=ip,
            data={"token_id": str(pat.id)},
        )
        await self.session.commit()

    # ------------------------------------------------------------------ one-time mail tokens
    def issue_one_time(self, user_id: UUID, purpose: str, ttl: int) -> IssuedSecret:
        """A single-use mail token for ``purpose`` ("verify" | "reset"), valid ``ttl`` seconds (no commit)."""
        secret = tokens.new_secret()
        row = OneTimeToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=tokens.hash_secret(secret),
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
        self.session.add(row)
        return IssuedSecret(secret=secret, record_id=row.id)

    async def _spend_one_time(self, secret: str, purpose: str) -> User:
        row = await self.session.scalar(
            select(OneTimeToken).where(
                OneTimeToken.token_hash == tokens.hash_secret(secret), OneTimeToken.purpose == purpose
            )
        )
        expires_at = aware(row.expires_at) if row else None
        if row is None or row.used_at is not None or expires_at is None or expires_at <= utcnow():
            raise ValidationFailed([FieldError("token", "is invalid, used or expired")])
        spent = await self.session.execute(
            update(OneTimeToken)
            .where(OneTimeToken.id == row.id, OneTimeToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            raise ValidationFailed([FieldError("token", "is invalid, used or expired")])
        user = await self.session.get(User, row.user_id)
        if user is None or not user.is_active:
            raise ValidationFailed([FieldError("token", "is invalid, used or expired")])
        return user

    async def issue_verification(self, user: User) -> IssuedSecret | None:
        if user.email_verified_at is not None:
            return None
        issued = self.issue_one_time(user.id, "verify", self.settings.verify_token_ttl)
        await self.session.commit()
        return issued

    async def verify_email(self, secret: str) -> User:
        user = await self._spend_one_time(secret, "verify")
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
            user.version += 1
        self.audit("email.verified", actor_id=user.id, subject_id=user.id)
        await self.session.commit()
        return user

    async def forgot_password(self, email: str, *, ip: str = "") -> tuple[User, IssuedSecret] | None:
        user = await self.session.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None or not user.is_active:
            self.audit("password.reset_requested", ip=ip, detail="unknown email")
            await self.session.commit()
            return None
        issued = self.issue_one_time(user.id, "reset", self.settings.reset_token_ttl)
        self.audit("password.reset_requested", subject_id=user.id, ip=ip)
        await self.session.commit()
        return user, issued

    async def reset_password(self, secret: str, new_password: str, *, ip: str = "") -> User:
        user = await self._spend_one_time(secret, "reset")
        self._check_password(user, new_password, field="password")
        user.password_hash = await passwords.hash_password(new_password)
        user.failed_logins = 0
        user.locked_until = None
        user.version += 1
        await self.revoke_user_sessions(user.id, reason="password_reset")
        self.audit("password.reset", actor_id=user.id, subject_id=user.id, ip=ip)
        await self.session.commit()
        return user

    async def change_password(self, principal: Principal, current: str, new: str, *, ip: str = "") -> None:
        user = principal.user
        ok, _ = await passwords.verify_password(user.password_hash, current)
        if not ok:
            raise ValidationFailed([FieldError("current_password", "is wrong")])
        self._check_password(user, new, field="new_password")
        user.password_hash = await passwords.hash_password(new)
        user.version += 1
        keep = principal.credential_id if principal.kind == "session" else None
        await self.revoke_user_sessions(user.id, reason="password_changed", keep=keep)
        self.audit("password.changed", actor_id=user.id, subject_id=user.id, ip=ip)
        await self.session.commit()

    def _check_password(self, user: User, password: str, *, field: str) -> None:
        problems = passwords.password_problems(
            password, min_length=self.settings.password_min_length, username=user.username, email=user.email
        )
        if problems:
            raise ValidationFailed([FieldError(field, p) for p in problems])
