"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Connection, text

from app.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


async def _check_database(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    async with request.app.state.sessions() as session:
        await session.execute(text("SELECT 1"))
        connection = await session.connection()

        def revision(sync: Connection) -> str | None:
            return current_revision(sync)

        current = await connection.run_sync(revision)
    head = head_revision(settings.database_url)
    if current != head:
        return {"ok": False, "reason": f"schema at {current}, code expects {head}"}
    return {"ok": True}


async def _check_broker(request: Request) -> dict[str, Any]:
    servers: str | None = request.app.state.settings.kafka_bootstrap_servers
    if not servers:
        return {"ok": True, "reason": "no broker configured for this process"}
    errors = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
        except (OSError, TimeoutError, ValueError) as exc:
            errors.append(f"{server}: {type(exc).__name__}")
            continue
        writer.close()
        await writer.wait_closed()
        return {"ok": True}
    return {"ok": False, "reason": "; ".join(errors)}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers at the expected schema and the broker accepts connections."""
    checks: dict[str, dict[str, Any]] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            checks[name] = await asyncio.wait_for(check(request), 5)
        except Exception as exc:  # noqa: BLE001 - a readiness probe reports any failure
            checks[name] = {"ok": False, "reason": type(exc).__name__}
    ready = all(check["ok"] for check in checks.values())
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ready" if ready else "not ready", "failing": failing, "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's registry."""
    registry: CollectorRegistry = request.app.state.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
