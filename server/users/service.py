"""Users as admins and their owners manage them, and the audit log. One transaction per method."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from advanced_alchemy.filters import SearchFilter
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.events import SessionsRevoked
from persistence.models import AuditEvent, PersonalAccessToken, User
from persistence.outbox import queue_control
from server.auth import passwords
from server.auth.schemas import user_out
from server.auth.service import (
    EMAIL_RE,
    USERNAME_RE,
    AccountService,
    IssuedSecret,
    Principal,
    normalize_email,
    utcnow,
)
from server.errors import Conflict, FieldError, Gone, StaleVersion, ValidationFailed
from server.settings import Settings
from server.users.announce import announce_member
from server.users.ownership import release_owned_boards
from server.users.schemas import AdminUserPatch, SelfPatch

SEARCH_FIELDS = {"email", "username", "display_name"}
RowT = TypeVar("RowT", User, AuditEvent)


def decode_cursor(cursor: str | None) -> UUID | None:
    """Cursors are opaque to clients; here they are the last id of the previous page."""
    if not cursor:
        return None
    try:
        return UUID(hex=cursor)
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this server gave out")]) from None


class UserService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.accounts = AccountService(session, settings)

    # ------------------------------------------------------------------ reads
    async def list_users(
        self, *, q: str | None, limit: int, cursor: str | None
    ) -> tuple[list[User], str | None]:
        """Users by id (UUID v7, so by creation), optionally matching ``q`` in email, username or name."""
        query: Select[tuple[User]] = select(User).order_by(User.id).limit(limit + 1)
        after = decode_cursor(cursor)
        if after is not None:
            query = query.where(User.id > after)
        if q and q.strip():
            search = SearchFilter(SEARCH_FIELDS, q.strip(), ignore_case=True, escape_wildcards=True)
            query = search.append_to_statement(query, User)
        rows = list(await self.session.scalars(query))
        return _page(rows, limit)

    async def get_user(self, user_id: UUID) -> User:
        user = await self.session.get(User, user_id)
        if user is None:
            raise Gone.not_found("user")
        return user

    async def list_audit(
        self, *, actor: UUID | None, subject: UUID | None, action: str | None, limit: int, cursor: str | None
    ) -> tuple[list[AuditEvent], str | None]:
        """Newest first. ``action`` matches exactly, or a prefix when it ends with ``.`` (``login.``)."""
        query: Select[tuple[AuditEvent]] = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
        before = decode_cursor(cursor)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        if actor is not None:
            query = query.where(AuditEvent.actor_id == actor)
        if subject is not None:
            query = query.where(AuditEvent.subject_id == subject)
        if action:
            if action.endswith("."):
                query = query.where(AuditEvent.action.startswith(action, autoescape=True))
            else:
                query = query.where(AuditEvent.action == action)
        rows = list(await self.session.scalars(query))
        return _page(rows, limit)

    # ------------------------------------------------------------------ admin changes
    async def admin_update(
        self,
        admin: Principal,
        user_id: UUID,
        patch: AdminUserPatch,
        *,
        expected_version: int | None,
        ip: str = "",
    ) -> User:
        """Change a user's role, activity or display name.

        Deactivating revokes every session and personal access token of the user (their sockets
        close). The last active admin cannot be demoted or deactivated.
        """
        user = await self.get_user(user_id)
        _check_version(user, expected_version)
        changed = renamed = False
        if patch.role is not None and patch.role != user.role:
            if user.role == "admin":
                await self._keep_one_admin(user)
            self.accounts.audit(
                "user.role_changed",
                actor_id=admin.user_id,
                subject_id=user.id,
                ip=ip,
                data={"from": user.role, "to": patch.role},
            )
            user.role = patch.role
            changed = True
        if patch.is_active is not None and patch.is_active != user.is_active:
            if not patch.is_active:
                if user.role == "admin":
                    await self._keep_one_admin(user)
                await self.revoke_credentials(user.id, reason="deactivated")
            self.accounts.audit(
                "user.deactivated" if not patch.is_active else "user.reactivated",
                actor_id=admin.user_id,
                subject_id=user.id,
                ip=ip,
            )
            user.is_active = patch.is_active
            changed = True
        if patch.display_name is not None and patch.display_name != user.display_name:
            user.display_name = patch.display_name
            changed = renamed = True
        if changed:
            user.version += 1
        if renamed:
            await announce_member(self.session, user.id, actor_id=admin.user_id)
        await self.session.commit()
        return user

    async def admin_delete(self, admin: Principal, user_id: UUID, *, ip: str = "") -> None:
        user = await self.get_user(user_id)
        if user.role == "admin":
            await self._keep_one_admin(user)
        await self._delete(user, actor_id=admin.user_id, ip=ip)

    # ------------------------------------------------------------------ self service
    async def update_self(
        self, principal: Principal, patch: SelfPatch, *, expected_version: int | None, ip: str = ""
    ) -> tuple[User, IssuedSecret | None]:
        """Change my display name, username or email. A new email needs the current password,
        becomes unverified and gets a verification link (returned, for the caller to mail)."""
        user = await self.accounts.current_user(principal)
        _check_version(user, expected_version)
        errors: list[FieldError] = []
        new_username = patch.username.strip() if patch.username is not None else None
        new_email = normalize_email(patch.email) if patch.email is not None else None
        if new_username is not None and new_username != user.username:
            if not USERNAME_RE.match(new_username):
                errors.append(
                    FieldError("username", "must be 2-39 characters: letters, digits, '_', '.', '-'")
                )
        else:
            new_username = None
        if new_email is not None and new_email != user.email:
            if not EMAIL_RE.match(new_email):
                errors.append(FieldError("email", "is not a valid email address"))
            elif patch.current_password is None:
                errors.append(FieldError("current_password", "is needed to change the email address"))
            elif not (await passwords.verify_password(user.password_hash, patch.current_password))[0]:
                errors.append(FieldError("current_password", "is wrong"))
        else:
            new_email = None
        if errors:
            raise ValidationFailed(errors)
        await self._ensure_free(user.id, email=new_email, username=new_username)
        issued: IssuedSecret | None = None
        changed = False
        if new_username is not None:
            user.username = new_username
            changed = True
        if new_email is not None:
            self.accounts.audit(
                "user.email_changed", actor_id=user.id, subject_id=user.id, ip=ip, data={"from": user.email}
            )
            # The links mailed to the old address (verification, reset) stop working.
            await self.accounts.spend_outstanding(user.id, "verify", "reset")
            user.email = new_email
            user.email_verified_at = None
            issued = self.accounts.issue_one_time(user, "verify", self.settings.verify_token_ttl)
            changed = True
        renamed = new_username is not None
        if patch.display_name is not None and patch.display_name != user.display_name:
            user.display_name = patch.display_name
            changed = renamed = True
        if changed:
            user.version += 1
        if renamed:
            await announce_member(self.session, user.id, actor_id=user.id)
        await self.session.commit()
        return user, issued

    async def delete_self(self, principal: Principal, password: str, *, ip: str = "") -> None:
        """Delete my account; the password confirms it. The last active admin cannot leave."""
        user = await self.accounts.current_user(principal)
        ok, _ = await passwords.verify_password(user.password_hash, password)
        if not ok:
            raise ValidationFailed([FieldError("password", "is wrong")])
        if user.role == "admin":
            await self._keep_one_admin(user)
        await self._delete(user, actor_id=None, ip=ip)

    # ------------------------------------------------------------------ shared
    async def revoke_credentials(self, user_id: UUID, *, reason: str) -> None:
        """Revoke every live session and personal access token of ``user_id`` (no commit)."""
        await self.accounts.revoke_user_sessions(user_id, reason=reason)
        pats = list(
            await self.session.scalars(
                select(PersonalAccessToken).where(
                    PersonalAccessToken.user_id == user_id, PersonalAccessToken.revoked_at.is_(None)
                )
            )
        )
        now = utcnow()
        for pat in pats:
            pat.revoked_at = now
        if pats:
            # Sockets authenticated by a personal token are keyed by the token id.
            queue_control(self.session, SessionsRevoked(session_ids=[p.id for p in pats]))

    async def _delete(self, user: User, *, actor_id: UUID | None, ip: str) -> None:
        await self.revoke_credentials(user.id, reason="user_deleted")
        released = await release_owned_boards(self.session, user.id, actor_id=actor_id)
        self.accounts.audit(
            "user.deleted",
            actor_id=actor_id,
            subject_id=user.id,
            ip=ip,
            data={
                "email": user.email,
                "username": user.username,
                "self": actor_id is None,
                "boards_transferred": {str(b): str(u) for b, u in released.transferred.items()},
                "boards_deleted": [str(b) for b in released.deleted],
            },
        )
        await self.session.flush()
        await self.session.delete(user)
        await self.session.commit()

    async def _keep_one_admin(self, leaving: User) -> None:
        others = await self.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.is_active.is_(True), User.id != leaving.id)
        )
        if not others:
            raise Conflict("That would leave no active administrator; make another admin first.")

    async def _ensure_free(self, user_id: UUID, *, email: str | None, username: str | None) -> None:
        """409 when the email or username is another account's, or the username is held by a
        registration of an existing email (``AccountService.username_taken``)."""
        taken = username is not None and await self.accounts.username_taken(username, other_than=user_id)
        if email is not None and not taken:
            taken = (
                await self.session.scalar(select(User.id).where(User.email == email, User.id != user_id))
            ) is not None
        if taken:
            raise Conflict("That email or username is already registered.")


def _check_version(user: User, expected: int | None) -> None:
    if expected is not None and expected != user.version:
        raise StaleVersion(current=user_out(user))


def _page(rows: list[RowT], limit: int) -> tuple[list[RowT], str | None]:
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id.hex
    return rows, None
