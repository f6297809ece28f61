"""Error answers: every error body is JSON with an `error` code (SPEC "Pinned contract"), plus `reason` or
`detail` where there is more to say. FastAPI's own 422 for a malformed body gets the same shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "install_error_handlers"]


class ApiError(Exception):
    """An answer other than success: the HTTP status, the error code and any further fields."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None, **fields: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **{k: v for k, v in fields.items() if v is not None}}
        self.headers = headers


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse({"error": "invalid_request", "detail": jsonable_encoder(detail)}, status_code=422)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
    error = codes.get(exc.status_code, "http_error")
    return JSONResponse({"error": error, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one JSON shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
