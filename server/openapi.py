"""The OpenAPI document: security schemes, operationIds, the problem responses of every operation.

``document(app)`` derives from each route handler what it can answer, so no operation forgets one:
a bearer route (it depends on ``principal``) names the bearer scheme and answers 401, and 403 when it
writes (read-only tokens, board roles) or is for admins; a path id answers 404; ``If-Match`` answers
409 on a stale version; a body or query answers 422; every API route answers 400, 429 and 503 (the
database is out). A handler's own ``responses=problems(...)`` adds the codes a rule cannot see (423).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    OAuthFlow,
    OAuthFlows,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from server.errors import Problem, problems

if TYPE_CHECKING:
    from litestar import Litestar, Router
    from litestar.types import Method

# Routes that need a token name both schemes: either one authorizes (OpenAPI "OR").
BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}, {"OAuth2Password": []}]

API_PREFIX = "/api/v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Parameters Litestar fills itself: neither a client's input nor a dependency.
_RESERVED = frozenset({"request", "state", "scope", "headers", "cookies", "query", "body", "socket"})

# operationIds are the handler's name in camelCase (``move_card`` → ``moveCard``), except where that
# name alone would not say what it does across the whole API.
OPERATION_IDS: dict[str, str] = {
    "health": "getHealth",
    "ready": "getReadiness",
    "metrics": "getMetrics",
    "me": "getCurrentUser",
    "sessions": "listSessions",
    "forgot": "forgotPassword",
    "reset": "resetPassword",
    "get_me": "getMyAccount",
    "patch_me": "updateMyAccount",
    "delete_me": "deleteMyAccount",
    "patch_user": "updateUser",
    "list_audit": "listAuditEvents",
    "create_item": "createChecklistItem",
    "update_item": "updateChecklistItem",
    "delete_item": "deleteChecklistItem",
    "search": "searchBoards",
    "count_unread": "countUnreadNotifications",
    "read_all": "markAllNotificationsRead",
    "read_one": "markNotificationRead",
    "put_preferences": "updatePreferences",
    "get_preferences": "getPreferences",
    "unsubscribe_link": "unsubscribeByLink",
    "unsubscribe_one_click": "unsubscribeOneClick",
    "deliveries": "listWebhookDeliveries",
    "get_watch": "getCardWatch",
    "watch": "watchCard",
    "unwatch": "unwatchCard",
}


# The API docs' own files (Swagger UI's dist), served from the installed package: no CDN at run time.
DOCS_ASSETS = "/schema/static"


def docs_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at /schema and /schema/swagger, its scripts and styles from ``DOCS_ASSETS``."""
    return SwaggerRenderPlugin(
        path=["/", "/swagger"],
        js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/favicon-32x32.png'>",
    )


def docs_assets() -> Router:
    return create_static_files_router(
        path=DOCS_ASSETS,
        directories=[str(swagger_ui_path)],
        include_in_schema=False,
        name="docs_assets",
    )


def operation_id(handler: HTTPRouteHandler, method: Method, _path: list[Any]) -> str:
    """``OpenAPIConfig.operation_id_creator``: a readable, unique name per operation."""
    name = handler.handler_name
    if name in OPERATION_IDS:
        return OPERATION_IDS[name]
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _closure(handler: HTTPRouteHandler) -> set[str]:
    """Every parameter name the handler and its dependencies (transitively) ask for."""
    deps = handler.resolve_dependencies()
    seen: set[str] = set()
    todo = list(handler.parsed_fn_signature.parameters)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in deps:
            todo.extend(deps[name].parsed_fn_signature.parameters)
    return seen


def problem_codes(handler: HTTPRouteHandler, path: str) -> set[int]:
    """The problem-details statuses the handler can answer (see the module docstring)."""
    if not path.startswith(API_PREFIX):
        return set()
    names = _closure(handler)
    deps = handler.resolve_dependencies()
    path_params = set(re.findall(r"{(\w+)(?::\w+)?}", path))
    dep_inputs = {n for n in names if n not in deps and n not in _RESERVED} - set(
        handler.parsed_fn_signature.parameters
    )
    own_inputs = {
        n for n in handler.parsed_fn_signature.parameters if n not in deps and n not in _RESERVED
    } - path_params
    codes = {400, 429, 503}
    if "principal" in names:
        codes.add(401)
        if "admin" in names or not set(handler.http_methods) <= SAFE_METHODS:
            codes.add(403)
    if path_params:
        codes.add(404)
    if "if_match" in names:
        codes.add(409)
    if own_inputs or dep_inputs - {"db_session"}:
        codes.add(422)
    return codes


def document(app: Litestar) -> None:
    """Give every HTTP operation its ``security`` and problem responses, before the document is built."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if set(handler.http_methods) <= {"OPTIONS", "HEAD"}:
                continue
            codes = problem_codes(handler, route.path)
            if not codes:
                continue
            own = dict(handler.responses or {})
            declared = {c for c, spec in own.items() if spec.data_container is Problem}
            kept = {c: spec for c, spec in own.items() if spec.data_container is not Problem}
            handler.responses = {**kept, **problems(*(codes | declared))}
            handler.security = BEARER if "principal" in _closure(handler) else None


SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    "BearerToken": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT or cbp_ token",
        description="An access token from /api/v1/auth/login, or a personal access token (cbp_…).",
    ),
    "OAuth2Password": SecurityScheme(
        type="oauth2",
        description="The OAuth2 password flow against /api/v1/auth/login (form: username, password).",
        flows=OAuthFlows(
            password=OAuthFlow(
                token_url="/api/v1/auth/login",
                scopes={},
            )
        ),
    ),
}

_LOGIN_JSON = Schema(
    type=OpenAPIType.OBJECT,
    required=["login", "password"],
    properties={
        "login": Schema(type=OpenAPIType.STRING, description="Email or username", max_length=254),
        "password": Schema(type=OpenAPIType.STRING, max_length=256),
    },
)


@dataclass
class LoginOperation(Operation):
    """The login handler parses its body itself (JSON or the OAuth2 form); describe both here."""

    def __post_init__(self) -> None:
        # The form is described by the OAuth2Password scheme (its tokenUrl is this route), not as a
        # second body here: generators mishandle a required body with two media types
        # (openapi-python-client writes a login module that fails to import).
        self.request_body = RequestBody(
            required=True,
            description=(
                "JSON `{login, password}`. The OAuth2 password form (`application/x-www-form-urlencoded`: "
                "`username`, `password`, optional `grant_type=password`) is accepted too."
            ),
            content={"application/json": OpenAPIMediaType(schema=_LOGIN_JSON)},
        )
