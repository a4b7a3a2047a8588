"""A write the provider or the customer relies on is committed before the answer; a database
too busy to take it answers 503 with Retry-After, so the sender retries — never 200 for a
write that was then lost.

The lock is real: another connection holds it (BEGIN IMMEDIATE on SQLite, LOCK TABLE on
PostgreSQL) for longer than the app's engine waits (a 0.5 s busy timeout / lock_timeout).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory
from app.inventory.models import Customer
from app.links import unsubscribe_token
from app.main import create_app
from app.settings import Role
from tests.factories import make_customer, make_inventory
from tests.integration.api_client import TOKENS, api_settings
from tests.integration.consents import opt_outs
from tests.integration.test_provider_webhooks import (
    AUTH_TOKEN,
    PHONE,
    outbox_row,
    seed,
    signed_post,
)

pytestmark = pytest.mark.integration

# Every table one of these writes touches: consents (opt-outs), the outbox (receipts); customers
# too, where opt-outs were written before they were kept apart.
LOCKED_TABLES = ("customers", "consents", "notification_outbox")


def impatient_engine(database_url: str) -> AsyncEngine:
    """The app's engine, waiting 0.5 s for a lock instead of 30 s."""
    if database_url.startswith("sqlite"):
        return create_engine(database_url, connect_args={"timeout": 0.5})
    return create_engine(database_url, connect_args={"server_settings": {"lock_timeout": "500"}})


@asynccontextmanager
async def write_lock_held(database_url: str) -> AsyncIterator[None]:
    """Hold a write lock from another connection while the block runs."""
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with connection.transaction():
            await connection.execute(f"LOCK TABLE {', '.join(LOCKED_TABLES)} IN EXCLUSIVE MODE")
            yield
    finally:
        await connection.close()


@dataclass(frozen=True)
class Write:
    """One request a sender relies on, the answer it expects, and how to see it stored."""

    name: str
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    answer: int
    stored: Callable[[async_sessionmaker[AsyncSession]], Awaitable[bool]]


async def _stop(http: httpx.AsyncClient) -> httpx.Response:
    return await signed_post(http, "/v1/webhooks/sms/inbound", {"From": PHONE, "Body": "STOPP"})


async def _unsubscribe(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post(f"/u/{unsubscribe_token('link-secret-for-tests', 'c-1', 'email')}")


async def _receipt(http: httpx.AsyncClient) -> httpx.Response:
    receipt = {"MessageSid": "SM0001", "MessageStatus": "delivered"}
    return await signed_post(http, "/v1/webhooks/sms/status", receipt)


async def _opted_out_of_sms(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return "sms" in await opt_outs(sessions)


async def _opted_out_of_email(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return "email" in await opt_outs(sessions)


async def _delivered(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return (await outbox_row(sessions, "SM0001")).delivery_status == "delivered"


WRITES = [
    Write("inbound STOP", _stop, 200, _opted_out_of_sms),
    Write("one-click unsubscribe", _unsubscribe, 200, _opted_out_of_email),
    Write("delivery receipt", _receipt, 204, _delivered),
]


@pytest.mark.parametrize("write", WRITES, ids=[w.name for w in WRITES])
async def test_a_write_the_database_is_too_busy_for_is_503_and_stored_when_retried(
    database_url: str, sessions: async_sessionmaker[AsyncSession], write: Write
) -> None:
    await seed(sessions)
    engine = impatient_engine(database_url)
    settings = api_settings(database_url, sms_gateway_token=SecretStr(f"AC0123:{AUTH_TOKEN}"))
    app = create_app(
        settings=settings, sessions=session_factory(engine), registry=CollectorRegistry()
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.7:8000"
        ) as http:
            async with write_lock_held(database_url):
                busy = await write.send(http)
            stored_while_busy = await write.stored(sessions)
            retried = await write.send(http)
    finally:
        await engine.dispose()

    assert busy.status_code == 503, busy.text
    assert busy.headers["Retry-After"] == "5"
    assert not stored_while_busy
    assert retried.status_code == write.answer, retried.text
    assert await write.stored(sessions)


async def test_an_inventory_put_the_database_is_too_busy_for_is_503(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    engine = impatient_engine(database_url)
    app = create_app(
        settings=api_settings(database_url),
        sessions=session_factory(engine),
        registry=CollectorRegistry(),
    )
    inventory = make_inventory([make_customer(1)])
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://forewarn",
            headers={"Authorization": f"Bearer {TOKENS[Role.ADMIN]}"},
        ) as http:
            async with write_lock_held(database_url):
                busy = await http.put("/v1/inventory", json=inventory)
            retried = await http.put("/v1/inventory", json=inventory)
    finally:
        await engine.dispose()
    assert busy.status_code == 503, busy.text
    assert busy.headers["Retry-After"] == "5"
    assert retried.status_code == 200, retried.text
    async with sessions() as session:
        assert list(await session.scalars(select(Customer.id))) == ["c-1"]
