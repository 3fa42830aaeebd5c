"""``/api/v1/users`` (admins manage everyone; ``/users/me`` is self service) and ``/api/v1/audit``."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Dependency, Parameter
from litestar.status_codes import HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.base import normalize_email
from server.auth.controller import _mailer, mail_limits, verification_mail
from server.auth.deps import CurrentPrincipal, client_ip, provide_admin, provide_principal
from server.auth.schemas import UserOut, user_out
from server.auth.service import Principal
from server.errors import FieldError, ValidationFailed, problems
from server.settings import Settings
from server.users.schemas import AdminUserPatch, AuditPage, SelfDeleteIn, SelfPatch, UserPage, audit_out
from server.users.service import UserService

AdminPrincipal = Annotated[Principal, Dependency(skip_validation=True)]
LimitParam = Annotated[int, Parameter(ge=1, le=200, description="Page size (default 50, at most 200)")]
CursorParam = Annotated[str | None, Parameter(description="`next_cursor` of the previous page")]


async def provide_user_service(db_session: AsyncSession, settings: Settings) -> UserService:
    return UserService(db_session, settings)


def expected_version(request: Request[Any, Any, Any], body_version: int | None) -> int | None:
    """The version the client last saw: the body's ``version``, else ``If-Match: "<version>"``."""
    if body_version is not None:
        return body_version
    header = request.headers.get("if-match")
    if not header or header.strip() == "*":
        return None
    raw = header.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise ValidationFailed([FieldError("If-Match", 'must be "<version>"')])
    return int(raw)


def _with_etag(user_body: UserOut) -> Response[UserOut]:
    return Response(user_body, headers={"ETag": f'"{user_body.version}"'})


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["users"]
    dependencies = {
        "principal": Provide(provide_principal),
        "admin": Provide(provide_admin),
        "users": Provide(provide_user_service),
    }

    @get("", summary="List users (admin)", responses=problems(401, 403, 422))
    async def list_users(
        self,
        admin: AdminPrincipal,
        users: UserService,
        q: Annotated[str | None, Parameter(description="Matches email, username or display name")] = None,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
    ) -> UserPage:
        """Every user, oldest first, with search and cursor pagination."""
        rows, next_cursor = await users.list_users(q=q, limit=limit, cursor=cursor)
        return UserPage(items=[user_out(u) for u in rows], next_cursor=next_cursor)

    @get("/me", summary="My account", responses=problems(401))
    async def get_me(self, principal: CurrentPrincipal) -> Response[UserOut]:
        return _with_etag(user_out(principal.user))

    @patch(
        "/me",
        summary="Change my display name, username or email",
        responses=problems(401, 403, 409, 422, 429),
    )
    async def patch_me(
        self,
        request: Request[Any, Any, Any],
        data: SelfPatch,
        principal: CurrentPrincipal,
        users: UserService,
        state: State,
    ) -> Response[UserOut]:
        """A new email needs ``current_password``; it is unverified until the mailed link is followed.
        The mail counts against the account's and the new address's mail limits (429 beyond)."""
        if data.email is not None and normalize_email(data.email) != principal.user.email:
            await mail_limits(state).take(address=data.email, account=principal.user_id)
        user, issued = await users.update_self(
            principal, data, expected_version=expected_version(request, data.version), ip=client_ip(request)
        )
        if issued is not None:
            _mailer(state).send_later(verification_mail(users.settings, user, issued))
        return _with_etag(user_out(user))

    @delete(
        "/me", status_code=HTTP_204_NO_CONTENT, summary="Delete my account", responses=problems(401, 409, 422)
    )
    async def delete_me(
        self,
        request: Request[Any, Any, Any],
        data: SelfDeleteIn,
        principal: CurrentPrincipal,
        users: UserService,
    ) -> None:
        """Needs the password. Sessions end at once; boards owned alone pass to their oldest admin."""
        await users.delete_self(principal, data.password, ip=client_ip(request))

    @get("/{user_id:uuid}", summary="A user (admin)", responses=problems(401, 403, 404))
    async def get_user(self, user_id: UUID, admin: AdminPrincipal, users: UserService) -> Response[UserOut]:
        return _with_etag(user_out(await users.get_user(user_id)))

    @patch(
        "/{user_id:uuid}",
        summary="Change a user's role, activity or name (admin)",
        responses=problems(401, 403, 404, 409, 422),
    )
    async def patch_user(
        self,
        request: Request[Any, Any, Any],
        user_id: UUID,
        data: AdminUserPatch,
        admin: AdminPrincipal,
        users: UserService,
    ) -> Response[UserOut]:
        """Deactivating revokes the user's sessions and tokens; the last active admin stays an admin."""
        user = await users.admin_update(
            admin,
            user_id,
            data,
            expected_version=expected_version(request, data.version),
            ip=client_ip(request),
        )
        return _with_etag(user_out(user))

    @delete(
        "/{user_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a user (admin)",
        responses=problems(401, 403, 404, 409),
    )
    async def delete_user(
        self, request: Request[Any, Any, Any], user_id: UUID, admin: AdminPrincipal, users: UserService
    ) -> None:
        await users.admin_delete(admin, user_id, ip=client_ip(request))


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["users"]
    dependencies = {
        "principal": Provide(provide_principal),
        "admin": Provide(provide_admin),
        "users": Provide(provide_user_service),
    }

    @get("", summary="The security audit log (admin)", responses=problems(401, 403, 422))
    async def list_audit(
        self,
        admin: AdminPrincipal,
        users: UserService,
        actor: Annotated[UUID | None, Parameter(description="Who did it (user id)")] = None,
        subject: Annotated[UUID | None, Parameter(description="Whom it concerned (user id)")] = None,
        action: Annotated[
            str | None,
            Parameter(description="An action (`login.failed`), or a prefix ending in `.` (`login.`)"),
        ] = None,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
    ) -> AuditPage:
        """Newest first: logins, lockouts, refresh reuse, password, role and token changes, deletions."""
        rows, next_cursor = await users.list_audit(
            actor=actor, subject=subject, action=action, limit=limit, cursor=cursor
        )
        return AuditPage(items=[audit_out(r) for r in rows], next_cursor=next_cursor)
