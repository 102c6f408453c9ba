"""Every error in one JSON shape, `{"error": {status, code, message, night}}`, FastAPI's own
(validation, unknown path, wrong method) included."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve.models import ErrorBody, ErrorDetail


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        night: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = ErrorDetail(status=status, code=code, message=message, night=night)
        self.headers = headers


NIGHT_HEADER = "X-Moovitamix-Night"


def error_response(error: ApiError) -> JSONResponse:
    headers = dict(error.headers or {})
    if error.detail.night is not None:
        headers[NIGHT_HEADER] = error.detail.night
    return JSONResponse(
        ErrorBody(error=error.detail).model_dump(), status_code=error.detail.status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            + (f" (got {problem['input']!r})" if "input" in problem else "")
            for problem in error.errors()
        )
        return error_response(ApiError(422, "invalid_request", problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(ApiError(error.status_code, code, str(error.detail), None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        return error_response(ApiError(500, "internal_error", "internal error (logged)"))


# What each route can answer besides 200, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "a token is configured and was not sent"},
    404: {"model": ErrorBody, "description": "nothing published for this user or track"},
    422: {"model": ErrorBody, "description": "malformed id or limit"},
    503: {"model": ErrorBody, "description": "no published file to serve"},
}
