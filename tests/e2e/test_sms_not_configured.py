"""No gateway, no lost word: `forewarn notifier` without one warns and holds SMS; restarted
with one, it sends each held SMS exactly once. `forewarn all --dev-sinks` delivers to the
loopback sinks `make run` uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory, transaction
from app.migrate import upgrade_to_head
from app.net import free_port
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from notifiers.gateway_sim import SmsGatewaySimulator
from tests.e2e.processes import Component, components, json_lines, tails, wait_healthy
from tests.factories import make_customer, make_inventory, open_outage_on_node_17
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

CUSTOMERS = 12
TOKEN = "noc-admin-token-for-e2e"


@pytest.fixture
def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'forewarn.db'}"
    upgrade_to_head(url)
    return url


@pytest.fixture
async def sms_outbox(
    migrated_sqlite: str,
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    """A SQLite file with an open outage on node-17 and its SMS notices planned."""
    url = migrated_sqlite
    engine: AsyncEngine = create_engine(url)
    sessions = session_factory(engine)
    people = [make_customer(i, channels=["sms"]) for i in range(CUSTOMERS)]
    now = datetime.now(UTC) - timedelta(minutes=1)
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session, inventory=make_inventory(people), services=["internet"], at=now
        )
        assert await plan_notices(session=session, event=event, now=now) == CUSTOMERS
    yield url, sessions
    await engine.dispose()


async def states(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
        )
        return {state: count for state, count in rows}


async def test_a_notifier_without_a_gateway_warns_holds_sms_and_sends_them_once_when_restarted(
    sms_outbox: tuple[str, async_sessionmaker[AsyncSession]], tmp_path: Path
) -> None:
    url, sessions = sms_outbox
    env = {
        "FOREWARN_DATABASE_URL": url,
        "FOREWARN_METRICS_PORT": "0",
        "FOREWARN_LOG_FORMAT": "json",
        "FOREWARN_LOG_LEVEL": "info",
    }
    bare = Component("notifier", env, tmp_path, "without-gateway")
    with SmsGatewaySimulator() as gateway:
        later = Component(
            "notifier",
            {
                **env,
                "FOREWARN_SMS_GATEWAY_URL": gateway.url,
                "FOREWARN_SMS_GATEWAY_TOKEN": gateway.credentials,
            },
            tmp_path,
            "with-gateway",
        )
        with components(bare, later) as procs:
            bare.start()

            async def all_held() -> bool:
                return (await states(sessions)) == {"held": CUSTOMERS}

            await eventually(
                all_held, "every SMS row held", seconds=60, detail=lambda: tails(procs)
            )
            assert bare.stop() == 0
            warnings = [
                line
                for line in json_lines(bare.log())
                if line.get("level") == "warning"
                and line.get("setting") == "FOREWARN_SMS_GATEWAY_URL"
            ]
            assert warnings, tails(procs)
            assert "SMS is not configured" in bare.log()  # the CLI's own line, too
            assert gateway.requests == 0

            later.start()

            async def all_sent() -> bool:
                return (await states(sessions)) == {"sent": CUSTOMERS}

            await eventually(
                all_sent, "every held SMS sent", seconds=60, detail=lambda: tails(procs)
            )
            assert later.stop() == 0
        assert "SMS is not configured" not in later.log()
    assert gateway.requests == CUSTOMERS  # one call each: nothing sent twice
    assert sorted(m.to for m in gateway.messages) == sorted(
        make_customer(i)["phone"] for i in range(CUSTOMERS)
    )


async def test_forewarn_all_with_dev_sinks_sends_notices_to_the_loopback_sinks(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        "FOREWARN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'all.db'}",
        "FOREWARN_API_PORT": str(port),
        "FOREWARN_API_TOKENS": f"noc:admin:{TOKEN}",
        "FOREWARN_LOG_LEVEL": "warning",
        "COLUMNS": "200",
    }
    everything = Component("all --dev-sinks", env, tmp_path, "all")
    base = f"http://127.0.0.1:{port}"
    with components(everything) as procs:
        everything.start()
        await wait_healthy(base, procs, seconds=90)
        start = datetime.now(UTC) + timedelta(hours=2)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as api:
            customers = [make_customer(1, channels=["sms"]), make_customer(2, channels=["email"])]
            answer = await api.put("/v1/inventory", json=make_inventory(customers))
            assert answer.status_code == 200, answer.text
            answer = await api.post(
                "/v1/maintenance",
                json={
                    "scope": "node-17",
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=1)).isoformat(),
                    "reason": "Fibre upgrade",
                },
            )
            assert answer.status_code == 201, answer.text

        def both_sent() -> bool:
            log = everything.log()
            return "maintenance_scheduled sms" in log and "maintenance_scheduled email" in log

        await eventually(
            both_sent, "the notices in the dev sinks", seconds=60, detail=lambda: tails(procs)
        )
        assert everything.stop() == 0
    log = everything.log()
    assert "dev sinks: e-mail to the SMTP server on 127.0.0.1:" in log
    assert "SMS is not configured" not in log
    assert make_customer(1)["phone"] not in log and make_customer(2)["email"] not in log
