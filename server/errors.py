"""RFC 9457 problem details for every error; no stack trace ever reaches a client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from advanced_alchemy.exceptions import DuplicateKeyError, IntegrityError, NotFoundError
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from persistence import db

log = structlog.get_logger("corkboard.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://corkboard.dev/problems/"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    423: "Locked",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    422: "validation",
    423: "locked",
    429: "rate-limited",
    500: "internal",
    503: "unavailable",
}


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """The problem details body (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None
    current: Any | None = None


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class AppError(HTTPException):
    """Base of the errors services raise; each maps to one status and problem type."""

    status_code = 400
    problem_type = "bad-request"

    def __init__(
        self,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        current: Any = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(detail=detail or _TITLES.get(self.status_code, ""), headers=headers)
        self.current = current
        self.errors = errors


class BadText(AppError):
    """400: text the server refuses whatever the field (the NUL character)."""


class ValidationFailed(AppError):
    status_code = 422
    problem_type = "validation"

    def __init__(self, errors: list[FieldError], detail: str = "The request has invalid fields.") -> None:
        super().__init__(detail, errors=errors)


class Unauthorized(AppError):
    status_code = 401
    problem_type = "unauthorized"

    def __init__(self, detail: str = "Authentication required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="corkboard"'})


class Forbidden(AppError):
    status_code = 403
    problem_type = "forbidden"


class Gone(AppError):
    """404 for things that do not exist or that the caller may not know exist (they look alike)."""

    status_code = 404
    problem_type = "not-found"

    @classmethod
    def not_found(cls, what: str) -> Gone:
        return cls(f"No such {what}.")


class Conflict(AppError):
    status_code = 409
    problem_type = "conflict"


class StaleVersion(Conflict):
    problem_type = "stale-version"

    def __init__(self, current: Any) -> None:
        super().__init__(
            "The resource changed since you read it; `current` is how it is now.", current=current
        )


class Locked(AppError):
    status_code = 423
    problem_type = "locked"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many failed logins from this address: wait before trying again.",
            headers={"Retry-After": str(max(retry_after, 1))},
        )


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI ``responses=`` entries: each status answers with a problem details body.

    400 (malformed request) and 429 (rate limit) can answer on every route, so they are always in.
    """
    return {
        code: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=_TITLES.get(code, "Error") + " (RFC 9457 problem details)",
            generate_examples=False,
        )
        for code in sorted({400, 429, *codes})
    }


def problem(
    status: int,
    detail: str,
    *,
    problem_type: str | None = None,
    errors: list[FieldProblem] | None = None,
    current: Any = None,
) -> Problem:
    return Problem(
        type=TYPE_BASE + (problem_type or _TYPES.get(status, "error")),
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        errors=errors,
        current=current,
    )


def problem_response(
    status: int,
    detail: str,
    *,
    problem_type: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    current: Any = None,
) -> Response[Problem]:
    body = problem(status, detail, problem_type=problem_type, errors=errors, current=current)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(extra: Any) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                field = str(item.get("key") or item.get("source") or "body")
                problems.append(FieldProblem(field=field, message=str(item.get("message", "is invalid"))))
    return problems


def _handle_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    errors = _validation_errors(exc.extra)
    return problem_response(
        422 if errors else 400,
        "The request has invalid fields." if errors else str(exc.detail),
        problem_type="validation" if errors else "bad-request",
        errors=errors or None,
    )


def _handle_app_error(_: Request[Any, Any, Any], exc: AppError) -> Response[Problem]:
    errors = [FieldProblem(e.field, e.message) for e in exc.errors] if exc.errors else None
    return problem_response(
        exc.status_code,
        exc.detail,
        problem_type=exc.problem_type,
        errors=errors,
        headers=exc.headers,
        current=exc.current,
    )


def _handle_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    headers = dict(exc.headers or {})
    detail = exc.detail
    if exc.status_code == 429:
        detail = "Too many requests: slow down and retry after the time in Retry-After."
        # Litestar's rate limiter sends the IETF RateLimit-* headers; clients expect Retry-After too.
        reset = headers.get("RateLimit-Reset")
        headers.setdefault("Retry-After", str(max(int(reset), 1)) if reset and reset.isdigit() else "60")
    return problem_response(exc.status_code, detail, headers=headers or None)


def _handle_not_found(_: Request[Any, Any, Any], exc: NotFoundError) -> Response[Problem]:
    return problem_response(404, "Not found.")


def _handle_integrity(_: Request[Any, Any, Any], exc: IntegrityError) -> Response[Problem]:
    log.info("integrity_error", error=str(exc)[:300])
    return problem_response(409, "That conflicts with an existing resource.")


def unavailable_response() -> Response[Problem]:
    return problem_response(
        503,
        "The database is unavailable right now; retry after the time in Retry-After.",
        headers={"Retry-After": str(db.RETRY_AFTER_SECONDS)},
    )


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    if db.unavailable(exc):
        # Not a bug: the database went away (or is not back yet). Readiness says the same.
        log.warning(
            "database_unavailable",
            path=request.url.path,
            method=request.method,
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )
        return unavailable_response()
    log.error("unhandled_error", path=request.url.path, method=request.method, exc_info=exc)
    from server.sentry import report_exception

    report_exception(exc)
    return problem_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "Something went wrong on our side; it has been logged."
    )


def _handle_too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Problem]:
    """JSON nested past the decoder's limit (msgspec raises RecursionError): the client's fault."""
    log.warning("request.too_deep", path=request.url.path, method=request.method)
    return problem_response(400, "The request body nests too deeply to be read.")


def _handle_auth(_: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Problem]:
    return problem_response(
        401,
        exc.detail or "Authentication required.",
        headers={"WWW-Authenticate": 'Bearer realm="corkboard"'},
    )


def _handle_permission(_: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Problem]:
    return problem_response(403, exc.detail or "You may not do that.")


exception_handlers: dict[type[Exception] | int, Any] = {
    AppError: _handle_app_error,
    ValidationException: _handle_validation,
    NotAuthorizedException: _handle_auth,
    PermissionDeniedException: _handle_permission,
    HTTPException: _handle_http,
    NotFoundError: _handle_not_found,
    DuplicateKeyError: _handle_integrity,
    IntegrityError: _handle_integrity,
    RecursionError: _handle_too_deep,
    Exception: _handle_unexpected,
}

__all__ = [
    "PROBLEM_JSON",
    "AppError",
    "BadText",
    "Conflict",
    "FieldError",
    "Forbidden",
    "Gone",
    "Locked",
    "MediaType",
    "Problem",
    "StaleVersion",
    "Unauthorized",
    "ValidationFailed",
    "exception_handlers",
    "problem",
    "problem_response",
    "problems",
    "unavailable_response",
]
