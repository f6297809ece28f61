"""OAuth2 client credentials (RFC 6749 section 4.4) with Authlib: `POST /oauth/token` and the bearer check.

Authlib does the protocol (client authentication by HTTP Basic, the grant's checks, the error answers, the token
generator); this module adapts it to Starlette and to `integrator.api.clients`, where the store keeps only hashes.
An unknown client id costs one argon2 verification, like a wrong secret.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from integrator.api import clients
from integrator.api.context import ApiContext, context_of
from integrator.api.errors import ApiError
from integrator.logs import get_logger

__all__ = ["BEARER_RESPONSES", "Caller", "TokenServer", "caller", "require", "router"]

log = get_logger("api")


class _Client(ClientMixin):
    """A client as Authlib asks about it; `row` is None for an unknown id (its secret never matches)."""

    def __init__(self, engine: Engine, client_id: str, row: clients.ApiClient | None) -> None:
        self.engine, self.client_id, self.row = engine, client_id, row

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.row.scopes if self.row else ()
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return clients.authenticate_client(self.engine, self.client_id, client_secret) is not None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic" and endpoint == "token"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials" and self.row is not None


class _ClientCredentials(ClientCredentialsGrant):
    """The grant, refusing (instead of silently narrowing) a scope the client does not hold."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        requested = set((self.request.payload.scope or "").split())
        client: _Client = self.request.client
        if requested - set(client.row.scopes if client.row else ()):
            raise InvalidScopeError()


class _Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: Mapping[str, str], form: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data  # type: ignore[no-any-return]


class TokenServer(AuthorizationServer):
    """Authlib's authorization server over the store, for the client credentials grant only."""

    def __init__(self, context: ApiContext) -> None:
        super().__init__(scopes_supported=list(clients.SCOPES))
        self.context = context
        lifetime = context.config.api.token_lifetime
        self.register_token_generator("default", BearerTokenGenerator(_random_token, None, lambda *_: lifetime))
        self.register_grant(_ClientCredentials)

    def query_client(self, client_id: str) -> _Client:
        engine = self.context.engine
        return _Client(engine, client_id, clients.find_client(engine, client_id))

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        client: _Client = request.client
        assert client.row is not None
        clients.save_token(
            self.context.engine, token["access_token"], client.row, token["scope"].split(), token["expires_in"]
        )
        log.info("api_token_issued", client=client.row.name, scope=token["scope"])

    def handle_response(self, status: int, body: Any, headers: Any) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request  # built by the route from Starlette's request (the form is read asynchronously)


def _random_token(**_: Any) -> str:
    """A bearer token: 256 random bits (only its SHA-256 is stored)."""
    return _random.token_urlsafe(32)


router = APIRouter(tags=["oauth"])
_MAX_FORM = 4096

_TOKEN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "scope": {"type": "string", "description": "space-separated; default: all of the client's"},
                    },
                }
            }
        },
    },
    "security": [{"clientBasic": []}],
    "responses": {
        "200": {
            "description": "A bearer token",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["access_token", "token_type", "expires_in", "scope"],
                        "properties": {
                            "access_token": {"type": "string"},
                            "token_type": {"type": "string"},
                            "expires_in": {"type": "integer"},
                            "scope": {"type": "string"},
                        },
                    }
                }
            },
        },
        "400": {"description": "invalid_request, unsupported_grant_type or invalid_scope (RFC 6749 5.2)"},
        "401": {"description": "invalid_client: unknown client or wrong secret"},
    },
}


@router.post("/oauth/token", openapi_extra=_TOKEN_BODY, response_model=None)
async def token(request: Request) -> JSONResponse:
    """Client credentials: HTTP Basic client id and secret, `grant_type=client_credentials` -> a bearer token."""
    form = _form(await request.body(), request.headers.get("content-type", ""))
    # TLS ends at the reverse proxy: Authlib's https check is about the caller's URL, which is https there.
    uri = f"https://{request.url.netloc}{request.url.path}"
    oauth_request = _Request(request.method, uri, request.headers, form)
    server: TokenServer = request.app.state.token_server
    return await run_in_threadpool(_token_response, server, oauth_request)


def _token_response(server: TokenServer, oauth_request: OAuth2Request) -> JSONResponse:
    """Authlib's answer, holding one of `[api] max_hash_concurrency` slots: checking the client's secret is an
    argon2 verification (~64 MiB) like a customer's password, and a flood of token requests must wait its turn
    as a flood of logins does."""
    with server.context.hashing():
        return server.create_token_response(oauth_request)  # type: ignore[no-any-return]


def _form(body: bytes, content_type: str) -> dict[str, str]:
    """The urlencoded form RFC 6749 prescribes (anything else reads as empty: Authlib answers invalid_request)."""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded" or len(body) > _MAX_FORM:
        return {}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return {}


@dataclass(frozen=True)
class Caller:
    """Who is calling: the client and the scopes its token carries."""

    client: clients.ApiClient
    scopes: frozenset[str]


_bearer = HTTPBearer(auto_error=False, description="A token from POST /oauth/token")


def caller(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008 - FastAPI's idiom
    context: ApiContext = Depends(context_of),  # noqa: B008
) -> Caller:
    """FastAPI dependency: the caller a valid bearer token proves; 401 `invalid_token` otherwise."""
    grant = clients.find_token(context.engine, credentials.credentials) if credentials else None
    if grant is None:
        raise ApiError(401, "invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return Caller(grant.client, grant.scopes)


BEARER_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid_request: a body that is not JSON"},
    401: {"description": "invalid_token: no bearer token, or an unknown or expired one"},
    403: {"description": "insufficient_scope: the token lacks the call's scope (reason names it)"},
    422: {"description": "invalid_request: a field missing or out of bounds (detail names it)"},
}
"""What every call behind a bearer token may answer besides its own statuses."""


def require(*scopes: str) -> Any:
    """FastAPI dependency: the caller, whose token must carry one of `scopes` (403 `insufficient_scope`)."""

    def check(who: Caller = Depends(caller)) -> Caller:  # noqa: B008
        if not who.scopes & set(scopes):
            raise ApiError(
                403,
                "insufficient_scope",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'},
                reason=f"this call needs a token with the scope {' or '.join(scopes)}",
            )
        return who

    return Depends(check)
