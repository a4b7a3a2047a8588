"""Liveness, readiness and Prometheus metrics.

The checks are plain async functions returning `{"ok": bool, "reason": ...}`, so the API and
the small probe server of the other processes (`forewarn/probes.py`) answer alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.migrate import current_revision, head_revision

CheckResult = dict[str, Any]
Check = Callable[[], Awaitable[CheckResult]]

CHECK_TIMEOUT_SECONDS = 5.0

router = APIRouter(tags=["operations"])


async def check_database(
    *, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> CheckResult:
    """The database answers, and its schema is at the revision this code expects."""
    async with sessions() as session:
        await session.execute(text("SELECT 1"))
        connection = await session.connection()

        def revision(sync: Connection) -> str | None:
            return current_revision(sync)

        current = await connection.run_sync(revision)
    head = head_revision(database_url)
    if current != head:
        return {"ok": False, "reason": f"schema at {current}, code expects {head}"}
    return {"ok": True}


async def check_broker(*, bootstrap_servers: str | None) -> CheckResult:
    """At least one bootstrap server accepts a TCP connection."""
    if not bootstrap_servers:
        return {"ok": True, "reason": "no broker configured for this process"}
    errors = []
    for server in bootstrap_servers.split(","):
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


async def run_checks(
    checks: Mapping[str, Check], *, seconds_each: float = CHECK_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Run every check (each within `seconds_each`); return the `/readyz` body."""
    results: dict[str, CheckResult] = {}
    for name, check in checks.items():
        try:
            results[name] = await asyncio.wait_for(check(), seconds_each)
        except Exception as exc:  # noqa: BLE001 - a readiness probe reports any failure
            results[name] = {"ok": False, "reason": type(exc).__name__}
    failing = [name for name, result in results.items() if not result["ok"]]
    return {"status": "not ready" if failing else "ready", "failing": failing, "checks": results}


async def readiness_response(checks: Mapping[str, Check]) -> JSONResponse:
    """200 with every check when all pass; 503 naming the failing ones otherwise."""
    body = await run_checks(checks)
    return JSONResponse(body, status_code=503 if body["failing"] else 200)


def metrics_response(registry: CollectorRegistry) -> Response:
    """Prometheus text exposition of `registry`."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers at the expected schema and the broker accepts connections."""
    state = request.app.state

    async def database() -> CheckResult:
        return await check_database(
            sessions=state.sessions, database_url=state.settings.database_url
        )

    async def broker() -> CheckResult:
        return await check_broker(bootstrap_servers=state.settings.kafka_bootstrap_servers)

    return await readiness_response({"database": database, "broker": broker})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's registry."""
    registry: CollectorRegistry = request.app.state.registry
    return metrics_response(registry)
