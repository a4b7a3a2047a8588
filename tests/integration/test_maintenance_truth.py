"""Maintenance truth: "the work is done, everything works again" only where that is true.

The real planner (`Planner.keep_promises`, the clock-driven path that plans maintenance
notices) on both databases, with outages stored by the outage service and their notices
planned by the real planner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.maintenance.schemas import MaintenanceIn
from app.maintenance.service import create_maintenance
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState, Transition
from app.rules.schemas import RatioDownRule
from app.rules.service import create_rule
from app.settings import Settings
from consumers.outage_events import Planner
from tests.clock import FakeClock
from tests.factories import apply_transition, make_customer, make_inventory, make_rule
from tests.invariants import assert_nobody_hears_it_works_while_out

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # the work runs 02:00-03:00 UTC
START, END = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
HOLD = timedelta(minutes=10)  # FOREWARN_RESOLVE_HOLD_MINUTES: detection's time to look again


def two_nodes(customers: list[dict[str, Any]]) -> dict[str, Any]:
    """make_inventory's node-17, and node-18 beside it under hub-1; c-9 lives on node-18."""
    doc = make_inventory(customers, services=("internet", "tv"))
    doc["nodes"].append({"id": "node-18", "level": "node", "parent": "hub-1"})
    for device in doc["devices"]:
        if device["id"] == "cpe-9":
            device["node"] = "node-18"
    return doc


class World:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.clock = FakeClock(T0)
        self.settings = Settings(resolve_hold_minutes=10, survey_after_minutes=0)
        self.planner = Planner(settings=self.settings, sessions=sessions, clock=self.clock)
        self.rule_id = 0

    async def setup(self, inventory: dict[str, Any], scope: str = "node-17") -> None:
        async with transaction(self.sessions) as session:
            await replace_inventory(session=session, doc=InventoryIn.model_validate(inventory))
            stored = await create_rule(
                session=session,
                rule=RatioDownRule.model_validate(make_rule(services=["internet"])),
            )
            self.rule_id = stored.id
            await create_maintenance(
                session=session,
                window=MaintenanceIn(
                    scope=scope, start=START, end=END, reason="Fibre upgrade", services=[]
                ),
                actor="noc",
                clock=lambda: T0,
            )

    async def outage(self, state: OutageState, at: datetime, scope: str = "node-17") -> None:
        """Move the internet outage on `scope` to `state` at `at`; plan its notices."""
        async with transaction(self.sessions) as session:
            event: OutageEvent | None = await apply_transition(
                session=session,
                transition=Transition(
                    rule_id=self.rule_id,
                    rule_version=1,
                    rule_name="modems-down",
                    scope_level="node",
                    scope_id=scope,
                    to_state=state,
                    at=at,
                    started_at=at,
                    severity="major",
                    services=("internet",),
                ),
                next_update_interval=timedelta(minutes=30),
                clock=lambda: at,
            )
            if event is not None:
                await plan_notices(session=session, event=event, now=at)

    async def at(self, moment: datetime) -> None:
        """Let the clock reach `moment` and the planner keep its promises there."""
        self.clock.now = moment
        await self.planner.keep_promises()

    async def told(self, stage: str) -> set[str]:
        async with self.sessions() as session:
            return set(
                await session.scalars(
                    select(OutboxRow.customer_id).where(OutboxRow.stage == stage).distinct()
                )
            )

    async def check_invariant(self) -> None:
        async with self.sessions() as session:
            await assert_nobody_hears_it_works_while_out(session)


@pytest.fixture
def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    return World(sessions)


async def test_a_window_that_ends_with_nothing_failing_tells_its_customers_it_is_done(
    world: World,
) -> None:
    await world.setup(make_inventory([make_customer(1), make_customer(2)]))
    await world.at(START + timedelta(seconds=5))
    await world.at(END + HOLD + timedelta(seconds=5))

    assert await world.told("maintenance_started") == {"c-1", "c-2"}
    assert await world.told("maintenance_completed") == {"c-1", "c-2"}
    await world.check_invariant()


async def test_a_window_that_ends_while_an_outage_is_open_on_its_node_says_nothing_is_done(
    world: World,
) -> None:
    await world.setup(make_inventory([make_customer(1), make_customer(2)]))
    await world.outage(OutageState.OPEN, START - timedelta(minutes=20))
    await world.at(START + timedelta(seconds=5))
    await world.at(END + HOLD + timedelta(seconds=5))
    await world.at(END + HOLD + timedelta(minutes=1))

    assert await world.told("detected") == {"c-1", "c-2"}
    assert await world.told("maintenance_completed") == set()
    await world.check_invariant()


async def test_an_outage_found_just_after_the_work_ends_takes_over_from_done(
    world: World,
) -> None:
    """The reported case: "works again", then "disrupted" 47 s later. Now the 47 s come first."""
    await world.setup(make_inventory([make_customer(1)]))
    await world.at(START + timedelta(seconds=5))
    await world.at(END + timedelta(seconds=10))  # the clock passes the end: nothing decided yet
    assert await world.told("maintenance_completed") == set()
    await world.outage(OutageState.OPEN, END + timedelta(seconds=47))
    await world.at(END + HOLD + timedelta(seconds=5))

    assert await world.told("detected") == {"c-1"}
    assert await world.told("maintenance_completed") == set()
    await world.check_invariant()

    # Fixed quickly: the outage's resolution is the news; no late "completed" follows it.
    await world.outage(OutageState.RESOLVED, END + HOLD + timedelta(minutes=1))
    await world.at(END + HOLD + timedelta(minutes=30))
    assert await world.told("resolved") == {"c-1"}
    assert await world.told("maintenance_completed") == set()


async def test_a_suspected_outage_holds_done_until_it_is_decided(world: World) -> None:
    await world.setup(make_inventory([make_customer(1)]))
    await world.at(START + timedelta(seconds=5))
    await world.outage(OutageState.SUSPECTED, END + timedelta(minutes=9))
    await world.at(END + HOLD + timedelta(seconds=5))
    assert await world.told("maintenance_completed") == set()

    await world.outage(OutageState.CANCELLED, END + HOLD + timedelta(seconds=30))
    await world.at(END + HOLD + timedelta(seconds=40))
    assert await world.told("maintenance_completed") == {"c-1"}
    await world.check_invariant()


async def test_on_a_hub_window_only_the_customers_of_the_failing_node_are_not_told_done(
    world: World,
) -> None:
    await world.setup(two_nodes([make_customer(1), make_customer(9)]), scope="hub-1")
    await world.at(START + timedelta(seconds=5))
    await world.outage(OutageState.OPEN, END + timedelta(seconds=40))
    await world.at(END + HOLD + timedelta(seconds=5))

    assert await world.told("maintenance_started") == {"c-1", "c-9"}
    assert await world.told("detected") == {"c-1"}
    assert await world.told("maintenance_completed") == {"c-9"}
    await world.check_invariant()
