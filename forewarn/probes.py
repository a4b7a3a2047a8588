"""The probe server of a process without the API: `/metrics`, `/healthz` and `/readyz`.

`forewarn detector`, `planner` and `notifier` serve it on `FOREWARN_API_HOST:FOREWARN_METRICS_PORT`
(0 turns it off). A process that runs the API serves the same three routes on the API port
instead, with every component's metrics, so `forewarn all` has one set of metrics.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence

import structlog
import uvicorn
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.exceptions import ForewarnError
from app.health import (
    Check,
    CheckResult,
    check_broker,
    check_database,
    metrics_response,
    readiness_response,
)
from app.serving import QuietServer, serve_until
from app.settings import Settings
from consumers.telemetry import Detector

log = structlog.get_logger("forewarn.probes")


class MetricsPortError(ForewarnError):
    """The metrics port cannot be bound (in use, or not allowed)."""


def process_checks(
    *,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    detectors: Sequence[Detector] = (),
) -> dict[str, Check]:
    """Readiness of a component process: database, broker, and a detector's partitions."""

    async def database() -> CheckResult:
        return await check_database(sessions=sessions, database_url=settings.database_url)

    async def broker() -> CheckResult:
        return await check_broker(bootstrap_servers=settings.kafka_bootstrap_servers)

    checks: dict[str, Check] = {"database": database, "broker": broker}
    if detectors:

        async def consumers() -> CheckResult:
            if all(detector.assigned for detector in detectors):
                return {"ok": True}
            return {"ok": False, "reason": "no partition assigned to the detector"}

        checks["consumers"] = consumers
    return checks


def create_probe_app(
    *, checks: Mapping[str, Check], registry: CollectorRegistry = REGISTRY
) -> Starlette:
    """The three operations routes, nothing else (no token, no API)."""

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        return await readiness_response(checks)

    async def metrics(_request: Request) -> Response:
        return metrics_response(registry)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


def bind_metrics_port(host: str, port: int) -> socket.socket:
    """Bind the probe server's socket now, so a port in use stops start-up with its name."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise MetricsPortError(
            f"FOREWARN_METRICS_PORT: cannot listen on {host}:{port} ({exc.strerror}); give each "
            "process on a host its own port, or 0 to serve no metrics"
        ) from None


async def serve_probes(app: Starlette, *, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve the probe app on the bound socket until `stop` is set."""
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    host, port = sock.getsockname()[:2]
    try:
        await serve_until(
            QuietServer(config),
            stop,
            sockets=[sock],
            on_started=lambda: log.info("probe server listening", url=f"http://{host}:{port}"),
        )
    finally:
        sock.close()
