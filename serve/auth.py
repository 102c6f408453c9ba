"""The optional bearer token: with `serve.token` set, every API request must send it."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="required when serve.token is set")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token: str | None = request.app.state.settings.token
    if token is None:
        return
    sent = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "send the API token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
