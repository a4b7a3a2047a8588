"""Map every error to one JSON shape: `{"detail": ..., "errors": [{"field", "reason"}]}`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.exceptions import ForewarnError, InvalidInputError

log = structlog.get_logger("forewarn.api")


def field_path(location: Sequence[Any]) -> str:
    """Render a pydantic error location as `customers[0].phone` (body prefix dropped)."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" and len(parts) > 1 else parts
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def install_error_handlers(app: FastAPI) -> None:
    """Answer validation errors with 422 naming each field, and `ForewarnError`s by status."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": field_path(e["loc"]), "reason": _reason(e)} for e in exc.errors()]
        return JSONResponse({"detail": "invalid input", "errors": errors}, status_code=422)

    @app.exception_handler(ForewarnError)
    async def _forewarn(request: Request, exc: ForewarnError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, InvalidInputError):
            body = {"detail": "invalid input", "errors": exc.errors}
        if exc.http_status >= 500:
            log.error("request failed", path=request.url.path, error=type(exc).__name__)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(body, status_code=exc.http_status, headers=headers)
