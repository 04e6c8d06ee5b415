"""Errors in OpenAI's JSON shape (``{"error": {"message", "type", "param", "code"}}``) with the right status."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """An error answered to the client: HTTP ``status`` with an OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.message, exc.type, exc.param, exc.code), exc.status, headers=exc.headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return JSONResponse(error_body(message, "invalid_request_error", param), 400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return JSONResponse(error_body(str(exc.detail), kind), exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body("internal server error", "server_error"), 500)


MEANINGS = {
    400: "invalid request (the message names the field)",
    401: "missing or wrong API key",
    403: "not allowed by the server's settings",
    404: "no such model, adapter or logged request",
    409: "conflicts with the server's state",
    413: "request body over the server's limit",
    429: "the queue is full: retry after Retry-After seconds",
    500: "the model failed on this batch (the server continues)",
    503: "a part this request needs is not configured",
    504: "the request ran past the server's timeout",
}
ALWAYS = (400, 401, 413, 500)  # any endpoint with a body and behind the API-key and body-limit middleware


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route answers, with the OpenAI error body."""
    from tunesmith.serve.protocol import ErrorBody

    return {c: {"model": ErrorBody, "description": MEANINGS[c]} for c in sorted({*ALWAYS, *codes})}


def drop_unused_422(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents 422 for request validation; this server answers those with 400 (OpenAI's shape)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    return schema


HANDLERS = {
    ApiError: _api_error,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    Exception: _unexpected,
}
