"""Dependencies for controllers: the account service and the authenticated principal."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import State
from litestar.params import Dependency
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.service import AccountService, Principal
from server.errors import Forbidden, Unauthorized
from server.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    return parse_bearer(request.headers.get("authorization", ""))


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


async def provide_account_service(
    db_session: AsyncSession, settings: Settings, state: State
) -> AccountService:
    return AccountService(db_session, settings, state.session_cache)


async def provide_principal(request: Request[Any, Any, Any], accounts: AccountService) -> Principal:
    """The caller, from ``Authorization: Bearer``; personal tokens without ``write`` may only read."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Send `Authorization: Bearer <token>`.")
    principal = await accounts.authenticate(token)
    if principal is None:
        raise Unauthorized("The token is invalid, expired or revoked.")
    if request.method not in SAFE_METHODS and not principal.can_write:
        raise Forbidden("This personal access token has the read scope only.")
    request.scope["user"] = principal.user
    request.scope["auth"] = principal
    return principal


async def provide_admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise Forbidden("Administrators only.")
    return principal


CurrentPrincipal = Annotated[Principal, Dependency(skip_validation=True)]
