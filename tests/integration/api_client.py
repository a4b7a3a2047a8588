"""An API client factory over the real app and a real database (no server socket needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import create_app
from app.settings import ApiToken, Role, Settings
from consumers.recorded import KafkaRecordedTelemetry
from notifiers.preview import RenderedUpdatePreviewer

TOKENS = {
    Role.VIEWER: "viewer-token-0123456789",
    Role.ENGINEER: "engineer-token-0123456789",
    Role.ADMIN: "admin-token-0123456789",
}

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def api_settings(database_url: str, **overrides: Any) -> Settings:
    tokens = tuple(ApiToken(role.value, role, SecretStr(t)) for role, t in TOKENS.items())
    base: dict[str, Any] = {
        "database_url": database_url,
        "api_tokens": tokens,
        "public_base_url": "https://status.example.net",
        "link_secret": SecretStr("link-secret-for-tests"),
    }
    return Settings(**{**base, **overrides})


def client_factory(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> ClientFactory:
    """Return `client(role)`: an httpx client on the app, authenticated with that role's token."""
    recorded = KafkaRecordedTelemetry(settings) if settings.kafka_bootstrap_servers else None
    app = create_app(
        settings=settings,
        sessions=sessions,
        registry=CollectorRegistry(),
        recorded_telemetry=recorded,
        update_previewer=RenderedUpdatePreviewer(),
    )

    @asynccontextmanager
    async def client(role: Role | None = Role.ADMIN) -> AsyncIterator[httpx.AsyncClient]:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://forewarn", headers=headers
        ) as http:
            yield http

    return client
