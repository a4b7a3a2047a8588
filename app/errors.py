"""Map every error to one JSON shape: `{"detail": ..., "errors": [{"field", "reason"}]}`."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

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


# How long a client is told to wait when the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = 5


# SQLSTATEs a PostgreSQL server gives while it cannot serve at all: class 08 (connection
# exception), and the operator interventions of a shutdown, a crash and a start-up in progress
# ("the database system is shutting down" / "is starting up", 57P03, is what a client meets
# for seconds on each side of a restart). Too many connections passes too.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLSTATEs of a server too busy to finish in time: a lock another transaction held past
# `lock_timeout` (55P03) and a statement cancelled by `statement_timeout` (57014). The same
# request succeeds once the other work is done (SQLite's "database is locked" after its busy
# timeout is an OperationalError, which passes as well).
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})


def _server_unavailable(exc: DBAPIError) -> bool:
    """Whether the driver's error carries a SQLSTATE that means the server cannot serve now."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
    )


def unavailable(exc: BaseException) -> str | None:
    """What cannot be reached, if `exc` says so (down, restarting, connection lost, too busy)
    rather than that the request was wrong: the first is worth a retry, the second is not."""
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return "the database is busy"
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or _server_unavailable(exc))
    ):
        return "the database is unavailable"
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        # asyncpg raises these bare when it cannot connect; so would a broker client.
        return "a service Forewarn needs (database or broker) cannot be reached"
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Answer validation errors with 422 naming each field, `ForewarnError`s by status, and a
    database that cannot be reached with 503 and `Retry-After` (never a bare 500)."""

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

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        what = unavailable(exc)
        if what is None:
            raise exc
        log.warning("dependency unavailable", path=request.url.path, error=type(exc).__name__)
        return JSONResponse(
            {"detail": f"{what}; retry shortly"},
            status_code=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )

    app.add_exception_handler(DBAPIError, _unavailable)
    app.add_exception_handler(OSError, _unavailable)
