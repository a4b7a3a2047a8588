"""Prometheus metrics of the HTTP API, created once per registry, and the middleware filling them.

Labels are bounded: the route *template* (`/v1/outages/{outage_id}`, never the id itself), the
method (unknown methods count as `other`) and the status code. Requests no route matched are
counted under `route="unmatched"`, so scanners probing random paths add no series.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class ApiMetrics:
    requests: Counter
    request_seconds: Histogram
    pool_in_use: Gauge


@cache
def api_metrics(registry: CollectorRegistry = REGISTRY) -> ApiMetrics:
    return ApiMetrics(
        requests=Counter(
            "forewarn_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        ),
        request_seconds=Histogram(
            "forewarn_http_request_seconds",
            "Seconds from a request's arrival to the end of its response, by route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        ),
        pool_in_use=Gauge(
            "forewarn_db_pool_connections_in_use",
            "Database connections checked out of the API's pool right now.",
            registry=registry,
        ),
    )


def watch_pool(metrics: ApiMetrics, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Let the pool gauge read the checked-out count of the sessions' engine, if it has one."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine):
        return
    checked_out = getattr(engine.pool, "checkedout", None)
    if callable(checked_out):
        metrics.pool_in_use.set_function(lambda: float(checked_out()))


def route_of(scope: Scope) -> str:
    """The template of the route that handled the request, or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetricsMiddleware:
    """Count every HTTP request and time it, labelled by route template (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = str(scope.get("method", "")).upper()
            method = method if method in METHODS else "other"
            route = route_of(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(
                time.perf_counter() - started
            )
