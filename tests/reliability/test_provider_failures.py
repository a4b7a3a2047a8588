"""Provider failures, replayed deterministically: the planner and a dispatcher in-process, on
SQLite, with the loopback SMS gateway and a clock the test moves.

Both guard fixes of bugs the storm (test_storm.py) ran into by chance: a detected notice
waiting for its retry was folded into an `overnight` one (fixed in cee318c), and rows waiting
behind an open circuit breaker used up their attempts without a call (fixed in 636c218).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory, transaction
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.notifications.models import OutboxRow
from app.notifications.planner import PlanPolicy, plan_notices
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState, Transition
from app.rules.schemas import RatioDownRule
from app.rules.service import create_rule
from app.settings import Settings
from forewarn.runtime import build_channels
from notifiers.dispatcher import Dispatcher
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.render import Renderer
from tests.clock import FakeClock
from tests.factories import apply_transition, make_rule
from tests.fixtures.db import _empty_all_tables
from tests.reliability.figures import record

pytestmark = pytest.mark.reliability

RULE = RatioDownRule.model_validate(make_rule(services=["internet"]))


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    dispatcher: Dispatcher
    clock: FakeClock
    rule_id: int

    async def transition(self, state: OutageState) -> OutageEvent:
        async with transaction(self.sessions) as session:
            event = await apply_transition(
                session=session,
                transition=Transition(
                    rule_id=self.rule_id,
                    rule_version=1,
                    rule_name=RULE.name,
                    scope_level="node",
                    scope_id="node-17",
                    to_state=state,
                    at=self.clock.now,
                    started_at=self.clock.now,
                    severity="major",
                    services=("internet",),
                ),
                next_update_interval=timedelta(minutes=30),
            )
            assert event is not None
            await plan_notices(
                session=session,
                event=event,
                now=self.clock.now,
                policy=PlanPolicy(resolve_hold=timedelta(0)),
            )
        return event

    async def rows(self) -> list[OutboxRow]:
        async with self.sessions() as session:
            return list(await session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def customers(count: int) -> dict[str, Any]:
    """`count` SMS customers on node-17, no quiet hours, in UTC."""
    return {
        "nodes": [
            {"id": "north", "level": "region"},
            {"id": "hub-1", "level": "hub", "parent": "north"},
            {"id": "node-17", "level": "node", "parent": "hub-1"},
        ],
        "devices": [
            {"id": f"cpe-{i}", "node": "node-17", "services": ["internet"]} for i in range(count)
        ],
        "customers": [
            {
                "id": f"c-{i}",
                "name": f"Customer {i}",
                "phone": f"+49151{20000000 + i}",
                "language": "en",
                "timezone": "UTC",
                "channels": ["sms"],
                "devices": [f"cpe-{i}"],
            }
            for i in range(count)
        ],
    }


@pytest.fixture
async def world(
    sqlite_url: str, sms_gateway: SmsGatewaySimulator, request: pytest.FixtureRequest
) -> AsyncIterator[World]:
    count, overrides = request.param
    engine = create_engine(sqlite_url)
    await _empty_all_tables(engine)
    sessions = session_factory(engine)
    settings = Settings(
        database_url=sqlite_url,
        sms_gateway_url=sms_gateway.url,
        sms_gateway_token=SecretStr(sms_gateway.credentials),
        fallback_channel="",
        **overrides,
    )
    clock = FakeClock()
    async with transaction(sessions) as session:
        await replace_inventory(session=session, doc=InventoryIn.model_validate(customers(count)))
        rule = await create_rule(session=session, rule=RULE)
    dispatcher = Dispatcher(
        sessions=sessions,
        channels=build_channels(settings),
        renderer=Renderer(),
        settings=settings,
        clock=clock,
        monotonic=clock.monotonic,
    )
    yield World(sessions, settings, dispatcher, clock, rule.id)
    await dispatcher.aclose()
    await engine.dispose()


@pytest.mark.parametrize("world", [(1, {})], indirect=True)
async def test_a_detected_notice_waiting_for_its_retry_is_not_taken_for_one_held_overnight(
    world: World, sms_gateway: SmsGatewaySimulator
) -> None:
    await world.transition(OutageState.OPEN)
    sms_gateway.fail_next(1, 500)
    assert await world.dispatcher.dispatch_once() == 1  # the detected SMS will be retried
    [waiting] = await world.rows()
    assert (waiting.state, waiting.last_error) == ("pending", "http_500")
    await world.transition(OutageState.RESOLVED)  # before the retry is due
    stages = {row.stage: row.state for row in await world.rows()}
    assert stages == {"detected": "pending", "resolved": "pending"}


@pytest.mark.parametrize(
    "world",
    [(20, {"circuit_failure_threshold": 3, "circuit_reset_seconds": 30.0})],
    indirect=True,
)
async def test_notices_waiting_behind_an_open_circuit_keep_their_attempts(
    world: World, sms_gateway: SmsGatewaySimulator
) -> None:
    await world.transition(OutageState.OPEN)
    sms_gateway.fail_next(1_000_000, 503)  # the gateway is down for the whole test
    minutes = 0
    while minutes < 30 and any(r.state == "pending" for r in await world.rows()):
        await world.dispatcher.dispatch_once()
        world.clock.advance(5)
        minutes = int(world.clock.monotonic() // 60)
    rows = await world.rows()
    failed = [r for r in rows if r.state == "failed"]
    record(
        "circuit_open_attempts",
        {
            "notices": len(rows),
            "gateway_down_minutes": minutes,
            "failed": len(failed),
            "gateway_calls": sms_gateway.requests,
            "calls_needed_for_that_many_failures": len(failed) * 8,
            "reasons": sorted({r.last_error or "" for r in failed}),
        },
    )
    # Failing for good is fine once a notice has had its 8 tries at the provider.
    assert sms_gateway.requests >= 8 * len(failed)
