"""Accounts: registration, login with lockout, sessions with rotating refresh tokens and
authentication. Personal access tokens and the mail flows are in ``credentials``; the shared types,
the audit log and session revocation in ``base``. One transaction per public method."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from uuid_utils.compat import uuid7

from persistence.db import NO_ROW, hot
from persistence.models import AuthSession, PersonalAccessToken, RefreshToken, ReservedUsername, User
from server.auth import passwords, tokens
from server.auth.base import (
    EMAIL_RE,
    USERNAME_RE,
    AccountBase,
    IssuedSecret,
    Principal,
    TokenPair,
    aware,
    normalize_email,
    utcnow,
)
from server.auth.credentials import CredentialFlows
from server.errors import Conflict, FieldError, Gone, Unauthorized, ValidationFailed

if TYPE_CHECKING:
    from server.auth.lockout import LoginThrottle

# Built once: every authenticated request runs it, and building a statement (operators, coercions,
# its cache key) cost more CPU than executing it.
_SESSION_AND_USER = hot(
    select(AuthSession, User)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.id == bindparam("sid")),
    sid=NO_ROW,
)


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at <= utcnow()


def _usable(revoked_at: datetime | None, expires_at: datetime | None, user: User) -> bool:
    """A login session or personal access token that is neither revoked nor expired, of an active user."""
    return revoked_at is None and user.is_active and not _expired(expires_at)


__all__ = [
    "EMAIL_RE",
    "USERNAME_RE",
    "AccountBase",
    "AccountService",
    "IssuedSecret",
    "Principal",
    "TokenPair",
    "aware",
    "normalize_email",
    "utcnow",
]


class AccountService(CredentialFlows):
    """The account service: one transaction per public method (see ``base`` and ``credentials``)."""

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

    async def username_taken(self, username: str, *, other_than: UUID | None = None) -> bool:
        """Whether ``username`` (any case) belongs to an account (other than ``other_than``) or is
        held by a registration of an existing email (see :meth:`register`)."""
        lowered = username.lower()
        account = select(User.id).where(func.lower(User.username) == lowered)
        if other_than is not None:
            account = account.where(User.id != other_than)
        if await self.session.scalar(account) is not None:
            return True
        held = await self.session.scalar(
            select(ReservedUsername.id).where(ReservedUsername.username == lowered)
        )
        return held is not None

    async def register(
        self,
        *,
        email: str,
        username: str,
        password: str,
        display_name: str | None,
        ip: str = "",
        retry: bool = True,
    ) -> tuple[User, IssuedSecret | None]:
        """Create an account; returns it with its verification link.

        An email that already has an account gets the same answer in every observable effect: the
        same 201 (a user that is never stored, with no link: ``None``), after the same password
        hashing, and the username is taken all the same (held in ``reserved_usernames``), so a
        later registration or rename with it is the same 409. The caller mails the address's
        owner instead of a link. Usernames are public, so a taken username is a plain 409.
        """
        email = normalize_email(email)
        username = username.strip()
        self.validate_new_account(email, username, password)
        if await self.username_taken(username):
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
        try:
            if existing is None:
                self.session.add(user)
                await self.session.flush()
                verification = self.issue_one_time(user, "verify", self.settings.verify_token_ttl)
                self.audit("user.registered", actor_id=user.id, subject_id=user.id, ip=ip)
            else:
                verification = None
                self.session.add(ReservedUsername(username=username.lower()))
                self.audit("user.register_existing_email", subject_id=existing, ip=ip)
            await self.session.commit()
        except IntegrityError:
            # A concurrent registration took the username (or the email) first.
            await self.session.rollback()
            if not retry or await self.username_taken(username):
                raise Conflict("That username is taken.") from None
            return await self.register(
                email=email,
                username=username,
                password=password,
                display_name=display_name,
                ip=ip,
                retry=False,
            )
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
        throttle: LoginThrottle | None = None,
    ) -> TokenPair:
        """Check the password, then open a session.

        With ``throttle``, tries are counted per (account, client address) and past the free
        failures each must wait (423 with ``Retry-After``, the right password included): see
        ``server/auth/lockout.py``. Unknown logins are counted alike and cost one argon2
        verification too, so neither the 401 nor the 423 tells whether an account exists.
        """
        user = await self.find_by_login(login)
        attempt = None
        if throttle is not None:
            key = (
                throttle.key(user.id, login, ip, user.password_hash)
                if user
                else throttle.key(None, login, ip)
            )
            attempt = await throttle.begin(key)
        ok, new_hash = await passwords.verify_password(user.password_hash if user else None, password)
        if user is None or not ok or not user.is_active:
            starts_waiting = attempt is not None and await attempt.failed()
            self.audit(
                "login.failed",
                subject_id=user.id if user else None,
                ip=ip,
                detail="" if user else "unknown login",
            )
            if starts_waiting and user is not None:
                self.audit("login.throttled", subject_id=user.id, ip=ip)
            await self.session.commit()
            raise Unauthorized("Wrong login or password.")
        if attempt is not None:
            await attempt.succeeded()
        if new_hash:
            user.password_hash = new_hash
        pair = await self._open_session(user, ip=ip, user_agent=user_agent)
        self.audit("login.succeeded", actor_id=user.id, subject_id=user.id, ip=ip)
        await self.session.commit()
        return pair

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

    async def list_sessions(self, user_id: UUID, *, limit: int, before: UUID | None) -> list[AuthSession]:
        """The user's live sessions, newest first (ids are UUID v7), at most ``limit`` of them,
        those older than ``before`` when given (the last one of the previous page)."""
        stmt = (
            select(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .where(AuthSession.expires_at > utcnow())
            .order_by(AuthSession.id.desc())
            .limit(limit)
        )
        if before is not None:
            stmt = stmt.where(AuthSession.id < before)
        return list(await self.session.scalars(stmt))

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
        cache = self.session_cache if self.session_cache is not None and self.session_cache.enabled else None
        cached = cache.get(claims.session_id) if cache is not None else None
        if cached is not None:
            if cached.user_id != claims.user_id or _expired(cached.expires_at):
                return None
            user = cached.user_in(self.session)
            expires_at = cached.expires_at
        else:
            generation = cache.generation if cache is not None else 0
            row = (await self.session.execute(_SESSION_AND_USER, {"sid": claims.session_id})).first()
            if row is None:
                return None
            auth_session, user = row
            expires_at = aware(auth_session.expires_at)
            if not _usable(auth_session.revoked_at, expires_at, user) or user.id != claims.user_id:
                return None
            if cache is not None:
                cache.put(claims.session_id, expires_at, user, generation=generation)
        return Principal(
            user=user,
            kind="session",
            credential_id=claims.session_id,
            scopes=frozenset({"read", "write"}),
            expires_at=expires_at,
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
        if not _usable(pat.revoked_at, aware(pat.expires_at), user):
            return None
        now, last_used = utcnow(), aware(pat.last_used_at)
        if last_used is None or now - last_used > timedelta(seconds=60):
            # At most one write a minute per token: enough for "last used", cheap for busy bots.
            await self.session.execute(
                update(PersonalAccessToken).where(PersonalAccessToken.id == pat.id).values(last_used_at=now)
            )
            await self.session.commit()
        return Principal(
            user=user,
            kind="pat",
            credential_id=pat.id,
            scopes=frozenset(pat.scopes),
            expires_at=aware(pat.expires_at),
        )
