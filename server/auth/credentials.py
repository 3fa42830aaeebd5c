"""Personal access tokens, one-time mail tokens (verification, reset) and password changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select, update

from persistence.events import SessionsRevoked
from persistence.models import OneTimeToken, PersonalAccessToken, User
from persistence.outbox import queue_control
from server.auth import passwords, tokens
from server.auth.base import AccountBase, IssuedSecret, Principal, aware, normalize_email, utcnow
from server.errors import FieldError, Gone, ValidationFailed


class CredentialFlows(AccountBase):
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

    async def list_pats(self, user_id: UUID, *, limit: int, before: UUID | None) -> list[PersonalAccessToken]:
        """The user's tokens that are not revoked, newest first (ids are UUID v7), at most
        ``limit``, those older than ``before`` when given (the last one of the previous page)."""
        stmt = (
            select(PersonalAccessToken)
            .where(PersonalAccessToken.user_id == user_id, PersonalAccessToken.revoked_at.is_(None))
            .order_by(PersonalAccessToken.id.desc())
            .limit(limit)
        )
        if before is not None:
            stmt = stmt.where(PersonalAccessToken.id < before)
        return list(await self.session.scalars(stmt))

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
    def issue_one_time(self, user: User, purpose: str, ttl: int) -> IssuedSecret:
        """A single-use mail token for ``purpose`` ("verify" | "reset"), valid ``ttl`` seconds and
        bound to the address it is mailed to, ``user.email`` (no commit)."""
        secret = tokens.new_secret()
        row = OneTimeToken(
            user_id=user.id,
            purpose=purpose,
            email=user.email,
            token_hash=tokens.hash_secret(secret),
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
        self.session.add(row)
        return IssuedSecret(secret=secret, record_id=row.id)

    async def spend_outstanding(self, user_id: UUID, *purposes: str) -> None:
        """Spend every unused mail token of ``user_id`` for ``purposes`` (no commit): the links
        already mailed stop working."""
        await self.session.execute(
            update(OneTimeToken)
            .where(
                OneTimeToken.user_id == user_id,
                OneTimeToken.purpose.in_(purposes),
                OneTimeToken.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )

    async def _spend_one_time(self, secret: str, purpose: str) -> User:
        invalid = ValidationFailed([FieldError("token", "is invalid, used or expired")])
        row = await self.session.scalar(
            select(OneTimeToken).where(
                OneTimeToken.token_hash == tokens.hash_secret(secret), OneTimeToken.purpose == purpose
            )
        )
        expires_at = aware(row.expires_at) if row else None
        if row is None or row.used_at is not None or expires_at is None or expires_at <= utcnow():
            raise invalid
        user = await self.session.get(User, row.user_id)
        # A token speaks for the address it was mailed to, and only while the account has it.
        if user is None or not user.is_active or row.email is None or row.email != user.email:
            raise invalid
        spent = await self.session.execute(
            update(OneTimeToken)
            .where(OneTimeToken.id == row.id, OneTimeToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            raise invalid
        return user

    async def issue_verification(self, user: User) -> IssuedSecret | None:
        if user.email_verified_at is not None:
            return None
        issued = self.issue_one_time(user, "verify", self.settings.verify_token_ttl)
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
        issued = self.issue_one_time(user, "reset", self.settings.reset_token_ttl)
        self.audit("password.reset_requested", subject_id=user.id, ip=ip)
        await self.session.commit()
        return user, issued

    async def reset_password(self, secret: str, new_password: str, *, ip: str = "") -> User:
        user = await self._spend_one_time(secret, "reset")
        self._check_password(user, new_password, field="password")
        user.password_hash = await passwords.hash_password(new_password)
        user.version += 1
        # Every other reset link mailed before dies with this one, and every session ends.
        await self.spend_outstanding(user.id, "reset")
        await self.revoke_user_sessions(user.id, reason="password_reset")
        self.audit("password.reset", actor_id=user.id, subject_id=user.id, ip=ip)
        await self.session.commit()
        return user

    async def change_password(self, principal: Principal, current: str, new: str, *, ip: str = "") -> None:
        user = await self.current_user(principal)
        ok, _ = await passwords.verify_password(user.password_hash, current)
        if not ok:
            raise ValidationFailed([FieldError("current_password", "is wrong")])
        self._check_password(user, new, field="new_password")
        user.password_hash = await passwords.hash_password(new)
        user.version += 1
        await self.spend_outstanding(user.id, "reset")
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
