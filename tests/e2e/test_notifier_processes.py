"""Notifiers as real processes: two share the outbox, one is killed -9 in the middle of a
10,000-notice fan-out, and still every customer gets exactly one notice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory, transaction
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from notifiers.gateway_sim import SmsGatewaySimulator
from tests.e2e.processes import Component, components, tails
from tests.factories import open_outage_on_node_17
from tests.fixtures.db import _empty_all_tables
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

CUSTOMERS = 10_000


@pytest.fixture
async def outbox(postgresql_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """10,000 customers on one node, an open outage there, its 10,000 SMS notices planned."""
    engine: AsyncEngine = create_engine(postgresql_url)
    await _empty_all_tables(engine)
    sessions = session_factory(engine)
    inventory = {
        "nodes": [
            {"id": "north", "level": "region"},
            {"id": "hub-1", "level": "hub", "parent": "north"},
            {"id": "node-17", "level": "node", "parent": "hub-1"},
        ],
        "devices": [
            {"id": f"cpe-{i}", "node": "node-17", "services": ["internet"]}
            for i in range(CUSTOMERS)
        ],
        "customers": [
            {
                "id": f"c-{i}",
                "name": f"Customer {i}",
                "phone": f"+49151{10000000 + i}",
                "language": ["en", "de", "es", "vi", "hi"][i % 5],
                "channels": ["sms"],
                "devices": [f"cpe-{i}"],
            }
            for i in range(CUSTOMERS)
        ],
    }
    now = datetime.now(UTC) - timedelta(minutes=1)
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session, inventory=inventory, services=["internet"], at=now, severity="critical"
        )
        assert await plan_notices(session=session, event=event, now=now) == CUSTOMERS
    yield sessions
    await engine.dispose()


async def states(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
        )
        return {state: count for state, count in rows}


async def test_two_notifiers_and_a_kill_9_mid_fan_out_send_every_notice_exactly_once(
    outbox: async_sessionmaker[AsyncSession], postgresql_url: str, tmp_path: Path
) -> None:
    with SmsGatewaySimulator() as gateway:
        env = {
            "FOREWARN_DATABASE_URL": postgresql_url,
            "FOREWARN_SMS_GATEWAY_URL": gateway.url,
            "FOREWARN_SMS_GATEWAY_TOKEN": gateway.credentials,
            "FOREWARN_SMS_RATE_PER_SECOND": "100000",
            "FOREWARN_DISPATCH_BATCH_SIZE": "100",
            "FOREWARN_DISPATCH_LEASE_SECONDS": "4",
            "FOREWARN_METRICS_PORT": "0",
            "FOREWARN_LOG_FORMAT": "json",
            "FOREWARN_LOG_LEVEL": "warning",
        }
        a = Component("notifier", env, tmp_path, "a")
        b = Component("notifier", env, tmp_path, "b")
        c = Component("notifier", env, tmp_path, "c")
        with components(a, b, c) as procs:
            a.start()
            b.start()
            await eventually(
                lambda: len(gateway.messages) >= CUSTOMERS // 4,
                "a quarter of the SMS to be sent",
                seconds=120,
                every=0.05,
                detail=lambda: tails(procs, 2000),
            )
            a.kill()  # mid-batch: some of its rows are claimed and maybe sent, never recorded
            c.start()

            async def all_sent() -> bool:
                return (await states(outbox)).get("sent", 0) >= CUSTOMERS

            await eventually(
                all_sent,
                "every row to be sent",
                seconds=120,
                every=0.25,
                detail=lambda: f"gateway requests: {gateway.requests}\n{tails(procs, 2000)}",
            )
            assert b.stop() == 0 and c.stop() == 0

        assert await states(outbox) == {"sent": CUSTOMERS}
        assert len(gateway.messages) == CUSTOMERS
        assert len({m.to for m in gateway.messages}) == CUSTOMERS
        # Any resend after the kill was answered with the first message's id, not a second SMS.
        assert gateway.requests >= CUSTOMERS
