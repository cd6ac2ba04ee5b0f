"""The one place that turns failures into HTTP responses.

The native API answers ``{"error": {"code", "message", "details"}}``; the OpenAI-style surface
(``/v1/videos``, ``/v1/models``) answers OpenAI's ``{"error": {"message", "type", "param", "code"}}``,
with 400 where the native API says 422 (the status the openai SDK reads as ``BadRequestError``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from api.schemas import ErrorBody, OpenAIErrorBody
from chorus.auth import AuthError
from chorus.errors import BrokerUnavailable, Conflict, InvalidInput, JobRejected, NotFound, RateLimited

log = logging.getLogger(__name__)

_STATUS = {InvalidInput: 422, NotFound: 404, Conflict: 409, RateLimited: 429, BrokerUnavailable: 503}
# Errors Starlette/FastAPI raise themselves (unknown route, wrong method, unreadable body).
_HTTP_CODES = {400: "malformed_json", 404: "not_found", 405: "method_not_allowed"}
# A 503 means a dependency is down, and nothing was accepted: tell clients when to try again rather
# than leave each to guess (a restart of Redis or Postgres takes seconds).
RETRY_AFTER_S = 2


class ApiError(Exception):
    """An error decided in the HTTP layer itself."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


OPENAI_PATHS = ("/v1/videos", "/v1/models")
_OPENAI_TYPES = {401: "authentication_error", 429: "rate_limit_error"}  # other 4xx: invalid_request_error


def error_response(status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
    body = {"error": {"code": code, "message": message, "details": details}}
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_S), **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def openai_error_response(
    status: int, code: str, message: str, param: str | None = None, headers: dict | None = None
) -> JSONResponse:
    status = 400 if status == 422 else status
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def respond(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict | None = None,
    param: str | None = None,
) -> JSONResponse:
    """The error in the envelope of the surface ``request`` came through."""
    if request.url.path.startswith(OPENAI_PATHS):
        if status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_S), **(headers or {})}
        return openai_error_response(status, code, message, param, headers)
    return error_response(status, code, message, details, headers)


def _validation_code(error: dict[str, Any]) -> tuple[int, str]:
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "json_invalid":
        return 400, "malformed_json"
    if error["type"] == "extra_forbidden":
        return 422, "unknown_field"
    if len(loc) < 2:
        return 422, "invalid_body"
    return 422, "invalid_" + loc[1].replace("-", "_").lower()


def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    status, code = _validation_code(errors[0])
    details = [{"loc": list(e["loc"]), "type": e["type"], "message": e["msg"]} for e in errors]
    where = ".".join(str(part) for part in errors[0]["loc"][1:]) or "body"
    return respond(request, status, code, f"{where}: {errors[0]['msg']}", details, param=where)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette's 405 names only the first matching route's."""
    methods = {
        method
        for route in request.app.router.routes
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE
        for method in route.methods or ()
    }
    return ", ".join(sorted(methods))


def _on_http(request: Request, exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return respond(request, exc.status_code, code, str(exc.detail), headers=headers)


def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return respond(request, 500, "internal_error", "internal server error")


def _on_rejected(request: Request, exc: JobRejected) -> JSONResponse:
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s), **exc.headers}
    return respond(request, _STATUS.get(type(exc), 400), exc.code, exc.message, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, lambda r, e: respond(r, e.status, e.code, e.message, e.details, e.headers))
    app.add_exception_handler(JobRejected, _on_rejected)
    app.add_exception_handler(
        AuthError, lambda r, e: respond(r, 401, e.code, e.message, headers={"WWW-Authenticate": "Bearer"})
    )
    app.add_exception_handler(
        OperationalError, lambda r, e: respond(r, 503, "database_unavailable", "the database is unavailable")
    )
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


# For route decorators: the error statuses a route can answer, documented with the error body.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def openai_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": OpenAIErrorBody} for status in statuses}
