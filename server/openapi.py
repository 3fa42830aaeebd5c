"""OpenAPI pieces shared by the controllers: security schemes, problem responses, the login body."""

from __future__ import annotations

from dataclasses import dataclass

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

# Routes that need a token name both schemes: either one authorizes (OpenAPI "OR").
BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}, {"OAuth2Password": []}]

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

_STR = Schema(type=OpenAPIType.STRING)
_LOGIN_JSON = Schema(
    type=OpenAPIType.OBJECT,
    required=["login", "password"],
    properties={
        "login": Schema(type=OpenAPIType.STRING, description="Email or username", max_length=254),
        "password": Schema(type=OpenAPIType.STRING, max_length=256),
    },
)
_LOGIN_FORM = Schema(
    type=OpenAPIType.OBJECT,
    required=["username", "password"],
    properties={
        "grant_type": Schema(type=OpenAPIType.STRING, const="password", description="Optional"),
        "username": Schema(type=OpenAPIType.STRING, description="Email or username"),
        "password": _STR,
    },
)


@dataclass
class LoginOperation(Operation):
    """The login handler parses its body itself (JSON or the OAuth2 form); describe both here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="JSON `{login, password}`, or the OAuth2 password form.",
            content={
                "application/json": OpenAPIMediaType(schema=_LOGIN_JSON),
                "application/x-www-form-urlencoded": OpenAPIMediaType(schema=_LOGIN_FORM),
            },
        )
