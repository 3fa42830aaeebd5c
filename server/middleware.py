"""Pure ASGI middleware: request id + access log, security headers."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, cast

import msgspec
import structlog
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

from server import metrics
from server.errors import PROBLEM_JSON, BadText, problem

log = structlog.get_logger("corkboard.http")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

API_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class RequestContextMiddleware:
    """Wraps the whole app (see ``create_app``), so 404s, 405s and CORS preflights get it too.

    Binds ``request_id`` (from ``X-Request-ID`` or new) to every log line of the request, echoes it,
    adds security headers, logs one access line and records HTTP metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        if asgi_scope["type"] not in ("http", "websocket"):
            await self.app(asgi_scope, receive, send)
            return
        scope = cast("dict[str, Any]", asgi_scope)
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        if scope["type"] == "websocket":
            await self.app(asgi_scope, receive, send)
            return

        path: str = scope["path"]
        is_docs = path.startswith("/schema")
        # "https" too when a trusted proxy said so (ProxyHeadersMiddleware, see create_app)
        https = scope.get("scheme") == "https"
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra: list[tuple[bytes, bytes]] = [
                    (b"x-request-id", request_id.encode()),
                    *API_SECURITY_HEADERS,
                ]
                if not is_docs:
                    extra.append(API_CSP)
                if https:
                    extra.append(HSTS)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            if b"%00" in scope.get("query_string", b"") or "\x00" in path:
                await _send_nul_problem(send_wrapper)
            else:
                marker = _nul_marker(headers.get(b"content-type", b""))
                await self.app(
                    asgi_scope, receive if marker is None else _refusing(receive, marker), send_wrapper
                )
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            metrics.observe_http(scope["method"], route, status, elapsed)
            if path not in ("/health", "/metrics"):
                log.info(
                    "http.request",
                    method=scope["method"],
                    path=path,
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )


# A NUL character cannot be stored in PostgreSQL text and is never meaningful in Corkboard's: it is
# refused in the query, the path and a JSON or form body (as \u0000 or %00), before any handler
# reads it, so both databases answer alike and nothing is half-written.
_NUL_DETAIL = "Text may not contain the NUL character (\\u0000)."


def _nul_marker(content_type: bytes) -> bytes | None:
    """How a body of this media type writes NUL: ``%00`` in a form, ``\\u0000`` in JSON (also the
    body without a media type, which Litestar reads as JSON); None for bytes that are not text
    (multipart, octet-stream: uploads)."""
    kind = content_type.split(b";", 1)[0].strip().lower()
    if kind == b"application/x-www-form-urlencoded":
        return b"%00"
    if kind.startswith(b"multipart/") or kind == b"application/octet-stream":
        return None
    return b"\\u0000"


def _refusing(receive: Receive, marker: bytes) -> Receive:
    """``receive`` that raises :class:`BadText` (a 400 problem) when the body carries ``marker``
    (how its media type writes NUL: ``\\u0000`` in JSON, ``%00`` in a form)."""
    tail = b""

    async def checked() -> Any:
        nonlocal tail
        message = await receive()
        if message["type"] == "http.request":
            seen = tail + message.get("body", b"")
            if marker in seen:
                raise BadText(_NUL_DETAIL)
            tail = seen[-(len(marker) - 1) :]
        return message

    return checked


async def _send_nul_problem(send: Send) -> None:
    body = msgspec.json.encode(problem(400, _NUL_DETAIL))
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 400, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _route_template(scope: dict[str, Any]) -> str:
    """The matched route's full template (``/api/v1/users/{user_id:uuid}``): bounded metric labels."""
    template = scope.get("path_template")
    return str(template) if template else "unmatched"
