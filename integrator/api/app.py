"""The FastAPI application: routers, error shapes, the access log. `create_app` is what `serve` and tests run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from sqlalchemy.engine import Engine

from integrator.api import customer, events, health, oauth, staff
from integrator.api.context import ApiContext
from integrator.api.errors import install_error_handlers
from integrator.config import Config
from integrator.logs import get_logger
from integrator.store.db import open_store

__all__ = ["create_app"]

log = get_logger("api")

DESCRIPTION = """The accounts of the B2B portal, for the portal's backend (never for browsers directly).

Authenticate with OAuth2 client credentials: `POST /oauth/token` with HTTP Basic (client id and secret from
`integrator api-client add`) and `grant_type=client_credentials`; send the token as `Authorization: Bearer ...`.
Every error body is JSON with an `error` code."""


def create_app(config: Config, engine: Engine | None = None) -> FastAPI:
    """The API over `config`'s store (or `engine`, already open)."""
    app = FastAPI(title="integrator portal API", version="1", description=DESCRIPTION)
    context = ApiContext(config, engine or open_store(config.store.url))
    app.state.context = context
    app.state.token_server = oauth.TokenServer(context)
    install_error_handlers(app)
    for module in (health, oauth, customer, staff, events):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        # FastAPI documents the bearer scheme from the routes; the token endpoint's HTTP Basic is added here.
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["clientBasic"] = {"type": "http", "scheme": "basic", "description": "client id and secret"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # The path only: no query string, header or body (tokens, passwords and secrets travel there).
        started = time.perf_counter()
        response = await call_next(request)
        log.info(
            "api_request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
            client=request.client.host if request.client else None,
        )
        return response

    return app
