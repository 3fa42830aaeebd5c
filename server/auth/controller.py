"""``/api/v1/auth``: register, login, refresh, logout, sessions, mail flows, personal access tokens."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from persistence.models import AuthSession, PersonalAccessToken, User
from server.auth import schemas as s
from server.auth.deps import CurrentPrincipal, client_ip, provide_principal
from server.auth.lockout import LoginThrottle, MailLimits
from server.auth.schemas import user_out
from server.auth.service import AccountService, IssuedSecret, aware, utcnow
from server.errors import FieldError, ValidationFailed, problems
from server.mail import Mail, Mailer
from server.openapi import LoginOperation
from server.pagination import make_page, page_limit, uuid_cursor
from server.settings import Settings

Limit = Annotated[int | None, Parameter(query="limit", required=False)]
Cursor = Annotated[str | None, Parameter(query="cursor", required=False, max_length=200)]


def pat_out(pat: PersonalAccessToken, token: str | None = None) -> s.PatOut:
    return s.PatOut(
        id=pat.id,
        name=pat.name,
        prefix=pat.prefix,
        scopes=pat.scopes,
        created_at=pat.created_at,
        expires_at=pat.expires_at,
        last_used_at=pat.last_used_at,
        token=token,
    )


def session_out(row: AuthSession, current: UUID | None) -> s.SessionOut:
    return s.SessionOut(
        id=row.id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        ip=row.ip,
        user_agent=row.user_agent,
        current=row.id == current,
    )


def verification_mail(settings: Settings, user: User, issued: IssuedSecret) -> Mail:
    link = f"{settings.public_url}/verify-email?token={issued.secret}"
    return Mail(
        to=user.email,
        subject="Verify your Corkboard email address",
        text=(
            f"Hello {user.display_name},\n\nConfirm your address by opening this link:\n{link}\n\n"
            f'Or POST {{"token": "{issued.secret}"}} to /api/v1/auth/verify-email.\n'
        ),
    )


def existing_account_mail(settings: Settings, email: str) -> Mail:
    return Mail(
        to=email,
        subject="You already have a Corkboard account",
        text=(
            "Someone (perhaps you) tried to register a new Corkboard account with this address, which "
            f"already has one. No new account was made.\n\nLog in at {settings.public_url}, or reset "
            f"your password at {settings.public_url}/forgot-password if you lost it. If it was not you, "
            "ignore this mail.\n"
        ),
    )


def reset_mail(settings: Settings, user: User, issued: IssuedSecret) -> Mail:
    link = f"{settings.public_url}/reset-password?token={issued.secret}"
    return Mail(
        to=user.email,
        subject="Reset your Corkboard password",
        text=(
            f"Hello {user.display_name},\n\nSomeone asked to reset your password. If it was you, open:\n"
            f"{link}\n\nThe link works once, within the hour. If it was not you, ignore this mail.\n"
        ),
    )


def _mailer(state: State) -> Mailer:
    mailer: Mailer = state.mailer
    return mailer


def mail_limits(state: State) -> MailLimits:
    limits: MailLimits = state.mail_limits
    return limits


def login_throttle(state: State) -> LoginThrottle:
    throttle: LoginThrottle = state.login_throttle
    return throttle


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]
    dependencies = {"principal": Provide(provide_principal)}

    @post(
        "/register",
        status_code=HTTP_201_CREATED,
        summary="Create an account",
        responses=problems(409, 422, 429),
    )
    async def register(
        self, request: Request[Any, Any, Any], data: s.RegisterIn, accounts: AccountService, state: State
    ) -> s.UserOut:
        """Create an account and mail a verification link. The user can log in at once.

        An email that already has an account gets the same 201 answer, and its owner a mail saying
        so: the answer never tells whether an address is registered. A taken username is a 409.
        """
        await mail_limits(state).take(address=data.email)
        user, verification = await accounts.register(
            email=data.email,
            username=data.username,
            password=data.password,
            display_name=data.display_name,
            ip=client_ip(request),
        )
        if verification is not None:
            _mailer(state).send_later(verification_mail(accounts.settings, user, verification))
        else:
            _mailer(state).send_later(existing_account_mail(accounts.settings, user.email))
        return user_out(user)

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Log in (JSON or OAuth2 password form)",
        responses=problems(401, 422, 423),
        operation_class=LoginOperation,
    )
    async def login(
        self, request: Request[Any, Any, Any], accounts: AccountService, state: State
    ) -> s.TokenOut:
        """Body: JSON ``{login, password}`` or the OAuth2 password form (``username``, ``password``)."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            raw: dict[str, Any] = {
                "login": form.get("username") or form.get("login"),
                "password": form.get("password"),
            }
        else:
            try:
                raw = msgspec.json.decode(await request.body())
            except msgspec.DecodeError:
                raise ValidationFailed([FieldError("body", "is not valid JSON")]) from None
        try:
            data = msgspec.convert(raw, s.LoginIn)
        except msgspec.ValidationError as exc:
            raise ValidationFailed([FieldError(_field_of(exc), str(exc).split(" - at")[0])]) from None
        pair = await accounts.login(
            login=data.login,
            password=data.password,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
            throttle=login_throttle(state),
        )
        return s.TokenOut(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Spend a refresh token for a new pair",
        responses=problems(401, 422),
    )
    async def refresh(
        self, request: Request[Any, Any, Any], data: s.RefreshIn, accounts: AccountService
    ) -> s.TokenOut:
        pair = await accounts.refresh(data.refresh_token, ip=client_ip(request))
        return s.TokenOut(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        summary="End this session, or all of them",
        responses=problems(401, 403),
    )
    async def logout(
        self,
        request: Request[Any, Any, Any],
        principal: CurrentPrincipal,
        accounts: AccountService,
        data: s.LogoutIn | None = None,
    ) -> None:
        await accounts.logout(principal, everywhere=bool(data and data.all), ip=client_ip(request))

    @get("/me", summary="The current user", responses=problems(401))
    async def me(self, principal: CurrentPrincipal) -> s.UserOut:
        return user_out(principal.user)

    @get("/sessions", summary="My live sessions", responses=problems(401, 422))
    async def sessions(
        self,
        principal: CurrentPrincipal,
        accounts: AccountService,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> s.SessionPage:
        """Newest first; the one this request uses is marked ``current``."""
        size, after = page_limit(limit), uuid_cursor(cursor)
        current = principal.credential_id if principal.kind == "session" else None
        rows = await accounts.list_sessions(principal.user_id, limit=size + 1, before=after)
        items = [session_out(row, current) for row in rows[:size]]
        return make_page(s.SessionPage, items, len(rows) > size, lambda item: str(item.id))

    @delete(
        "/sessions/{session_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke a session",
        responses=problems(401, 403, 404),
    )
    async def revoke_session(
        self,
        request: Request[Any, Any, Any],
        session_id: UUID,
        principal: CurrentPrincipal,
        accounts: AccountService,
    ) -> None:
        await accounts.revoke_session(principal, session_id, ip=client_ip(request))

    @post(
        "/verify-email", status_code=HTTP_200_OK, summary="Confirm an email address", responses=problems(422)
    )
    async def verify_email(self, data: s.TokenIn, accounts: AccountService) -> s.UserOut:
        return user_out(await accounts.verify_email(data.token))

    @post(
        "/verify-email/resend",
        status_code=HTTP_202_ACCEPTED,
        summary="Mail a new verification link",
        responses=problems(401, 403),
    )
    async def resend_verification(
        self, principal: CurrentPrincipal, accounts: AccountService, state: State
    ) -> s.Accepted:
        """At most ``MAIL_PER_ACCOUNT_PER_HOUR`` per account and ``MAIL_PER_ADDRESS_PER_HOUR`` to
        one address (429 with ``Retry-After`` beyond)."""
        if principal.user.email_verified_at is None:
            await mail_limits(state).take(address=principal.user.email, account=principal.user_id)
        issued = await accounts.issue_verification(principal.user)
        if issued is not None:
            _mailer(state).send_later(verification_mail(accounts.settings, principal.user, issued))
        return s.Accepted(detail="If the address is not verified yet, a new link is on its way.")

    @post(
        "/password/forgot",
        status_code=HTTP_202_ACCEPTED,
        summary="Mail a password reset link",
        responses=problems(422, 429),
    )
    async def forgot(
        self, request: Request[Any, Any, Any], data: s.EmailIn, accounts: AccountService, state: State
    ) -> s.Accepted:
        """Answers 202 whether or not the address exists; the mail goes out off the request path.
        At most ``MAIL_PER_ADDRESS_PER_HOUR`` per address, counted whether or not it has an account."""
        await mail_limits(state).take(address=data.email)
        found = await accounts.forgot_password(data.email, ip=client_ip(request))
        if found is not None:
            user, issued = found
            _mailer(state).send_later(reset_mail(accounts.settings, user, issued))
        return s.Accepted(detail="If that address has an account, a reset link is on its way.")

    @post(
        "/password/reset",
        status_code=HTTP_204_NO_CONTENT,
        summary="Set a new password with a mailed token",
        responses=problems(422),
    )
    async def reset(self, request: Request[Any, Any, Any], data: s.ResetIn, accounts: AccountService) -> None:
        await accounts.reset_password(data.token, data.password, ip=client_ip(request))

    @post(
        "/password/change",
        status_code=HTTP_204_NO_CONTENT,
        summary="Change my password",
        responses=problems(401, 403, 422),
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        data: s.ChangePasswordIn,
        principal: CurrentPrincipal,
        accounts: AccountService,
    ) -> None:
        """Other sessions are revoked (their sockets close); this one stays."""
        await accounts.change_password(
            principal, data.current_password, data.new_password, ip=client_ip(request)
        )

    @get("/tokens", summary="My personal access tokens", responses=problems(401, 422))
    async def list_tokens(
        self,
        principal: CurrentPrincipal,
        accounts: AccountService,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> s.PatPage:
        """Newest first; live ones only (not revoked; expired ones are listed until revoked)."""
        size, after = page_limit(limit), uuid_cursor(cursor)
        rows = await accounts.list_pats(principal.user_id, limit=size + 1, before=after)
        return make_page(
            s.PatPage, [pat_out(p) for p in rows[:size]], len(rows) > size, lambda item: str(item.id)
        )

    @post(
        "/tokens",
        status_code=HTTP_201_CREATED,
        responses=problems(401, 403, 422),
        summary="Create a personal access token (shown once)",
    )
    async def create_token(
        self,
        request: Request[Any, Any, Any],
        data: s.PatIn,
        principal: CurrentPrincipal,
        accounts: AccountService,
    ) -> s.PatOut:
        if principal.kind == "pat":
            raise ValidationFailed([FieldError("authorization", "log in to create tokens; a token cannot")])
        if data.expires_at is not None and (aware(data.expires_at) or utcnow()) <= utcnow():
            raise ValidationFailed([FieldError("expires_at", "must be in the future")])
        if "write" in data.scopes and "read" not in data.scopes:
            data = msgspec.structs.replace(data, scopes=[*data.scopes, "read"])
        pat, secret = await accounts.create_pat(
            principal,
            name=data.name,
            scopes=list(data.scopes),
            expires_at=data.expires_at,
            ip=client_ip(request),
        )
        return pat_out(pat, secret)

    @delete(
        "/tokens/{token_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke a personal access token",
        responses=problems(401, 403, 404),
    )
    async def revoke_token(
        self,
        request: Request[Any, Any, Any],
        token_id: UUID,
        principal: CurrentPrincipal,
        accounts: AccountService,
    ) -> None:
        await accounts.revoke_pat(principal, token_id, ip=client_ip(request))


def _field_of(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    if "`$." in message:
        return message.split("`$.", 1)[1].rstrip("`").split(".")[0]
    if "missing required field" in message:
        return message.rsplit("`", 2)[-2] if message.count("`") >= 2 else "body"
    return "body"
