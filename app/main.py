"""Build the FastAPI application: routers, error mapping, and the state routes share."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import health, public
from app.audit import routes as audit_routes
from app.auth import TokenRegistry
from app.customers import routes as customer_routes
from app.customers.service import ContactSink
from app.detection.backtest import RecordedTelemetry
from app.errors import install_error_handlers
from app.inventory import routes as inventory_routes
from app.limits import BodySizeLimitMiddleware
from app.maintenance import routes as maintenance_routes
from app.metrics import HttpMetricsMiddleware, api_metrics, watch_pool
from app.noc import routes as noc_routes
from app.noc.preview import UpdatePreviewer
from app.outages import routes as outage_routes
from app.rules import routes as rule_routes
from app.settings import Settings
from app.tokens import routes as token_routes
from app.tokens.service import stored_token_lookup
from app.webhooks import routes as webhook_routes
from app.webhooks.metrics import webhook_metrics


def create_app(
    *,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    registry: CollectorRegistry = REGISTRY,
    contact_sink: ContactSink | None = None,
    recorded_telemetry: RecordedTelemetry | None = None,
    update_previewer: UpdatePreviewer | None = None,
) -> FastAPI:
    """Return the API application for these settings and this database.

    `contact_sink` receives every customer lookup the API answers; None publishes nothing.
    `recorded_telemetry` is where backtests over a time range read; None refuses them.
    `update_previewer` renders update previews (notifiers'); None answers them 501.
    """
    app = FastAPI(
        title="Forewarn",
        version="0.1.0",
        summary="Detect telecom outages before customers call, and keep every customer told.",
    )
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.tokens = TokenRegistry(settings.api_tokens, lookup=stored_token_lookup(sessions))
    app.state.registry = registry
    app.state.contact_sink = contact_sink
    app.state.recorded_telemetry = recorded_telemetry
    app.state.update_previewer = update_previewer
    install_error_handlers(app)
    metrics = api_metrics(registry)
    watch_pool(metrics, sessions)
    webhook_metrics(registry)  # created now, so their families show before the first webhook
    # The last added runs first: every request is counted, the refused ones too.
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.include_router(health.router)
    app.include_router(inventory_routes.router)
    app.include_router(rule_routes.router)
    app.include_router(outage_routes.router)
    app.include_router(noc_routes.router)
    app.include_router(maintenance_routes.router)
    app.include_router(customer_routes.router)
    app.include_router(webhook_routes.router)
    app.include_router(token_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(public.router)
    return app
