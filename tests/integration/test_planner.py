"""Planning: the right customers, each listed channel, and never a row twice."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.inventory.models import Customer, Device, TopologyNode, customer_devices
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.outages.models import Outage
from tests.factories import outage_row, rule_row

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Two hubs; node-17 under hub-1 has three customers, node-20 under hub-2 one."""
    async with transaction(sessions) as session:
        await session.execute(
            insert(TopologyNode),
            [
                {"id": "north", "level": "region", "parent_id": None},
                {"id": "hub-1", "level": "hub", "parent_id": "north"},
                {"id": "hub-2", "level": "hub", "parent_id": "north"},
                {"id": "node-17", "level": "node", "parent_id": "hub-1"},
                {"id": "node-18", "level": "node", "parent_id": "hub-1"},
                {"id": "node-20", "level": "node", "parent_id": "hub-2"},
            ],
        )
        devices = [
            ("cpe-1", "node-17", ["internet", "tv"]),
            ("cpe-2", "node-17", ["internet"]),
            ("stb-3", "node-17", ["tv"]),
            ("cpe-4", "node-18", ["internet"]),
            ("cpe-5", "node-20", ["internet"]),
        ]
        await session.execute(
            insert(Device), [{"id": d, "node_id": n, "services": s} for d, n, s in devices]
        )
        customers = [
            ("c-1", "de", ["sms", "email"], [], "cpe-1"),
            ("c-2", "en", ["sms", "email"], ["email"], "cpe-2"),
            ("c-3", "en", ["sms"], [], "stb-3"),
            ("c-4", "de", ["email"], [], "cpe-4"),
            ("c-5", "en", ["sms"], [], "cpe-5"),
        ]
        await session.execute(
            insert(Customer),
            [
                {
                    "id": c,
                    "name": c,
                    "phone": "+4915112345678",
                    "email": f"{c}@example.com",
                    "language": lang,
                    "timezone": "Europe/Berlin",
                    "channels": channels,
                    "opt_outs": opt_outs,
                    "priority": False,
                }
                for c, lang, channels, opt_outs, _ in customers
            ],
        )
        await session.execute(
            insert(customer_devices), [{"customer_id": c[0], "device_id": c[4]} for c in customers]
        )
        session.add(rule_row(name="r", at=NOW))
        await session.flush()
        for outage_id, level, scope in (("o-node", "node", "node-17"), ("o-hub", "hub", "hub-1")):
            session.add(outage_row(outage_id, level=level, scope=scope, at=NOW))


def event(
    outage_id: str,
    level: str,
    scope: str,
    state: OutageState,
    services: tuple[str, ...] = ("internet",),
) -> OutageEvent:
    return OutageEvent(
        outage_id=outage_id,
        state=state,
        previous_state=None,
        at=NOW,
        rule_id=1,
        rule_name="r",
        scope_level=level,
        scope_id=scope,
        severity="major",
        services=services,
    )


async def planned(sessions: async_sessionmaker[AsyncSession], outage_id: str) -> set[tuple]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                OutboxRow.customer_id, OutboxRow.stage, OutboxRow.channel, OutboxRow.language
            ).where(OutboxRow.outage_id == outage_id)
        )
        return {tuple(row) for row in rows}


async def test_an_open_node_outage_plans_each_listed_channel_of_customers_with_the_service(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with transaction(sessions) as session:
        count = await plan_notices(
            session=session,
            event=event("o-node", "node", "node-17", OutageState.OPEN, services=("tv",)),
            now=NOW,
        )
    # c-2 has only internet (the outage is about TV); c-3 is on TV and SMS only.
    assert await planned(sessions, "o-node") == {
        ("c-1", "detected", "sms", "de"),
        ("c-1", "detected", "email", "de"),
        ("c-3", "detected", "sms", "en"),
    }
    assert count == 3


async def test_an_internet_outage_skips_e_mail_for_customers_who_also_get_sms(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with transaction(sessions) as session:
        count = await plan_notices(
            session=session, event=event("o-node", "node", "node-17", OutageState.OPEN), now=NOW
        )
    # E-mail is read over the broadband that is down: c-1 hears by SMS; c-2 opted out of
    # e-mail anyway; c-3 has only TV.
    assert await planned(sessions, "o-node") == {
        ("c-1", "detected", "sms", "de"),
        ("c-2", "detected", "sms", "en"),
    }
    assert count == 2
    async with sessions() as session:
        outage = await session.get(Outage, "o-node")
    assert outage is not None and outage.affected_customers == 2


async def test_a_hub_outage_reaches_the_customers_of_every_node_under_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with transaction(sessions) as session:
        await plan_notices(
            session=session, event=event("o-hub", "hub", "hub-1", OutageState.OPEN), now=NOW
        )
    customers = {row[0] for row in await planned(sessions, "o-hub")}
    assert customers == {"c-1", "c-2", "c-4"}


async def test_a_replayed_event_plans_nothing_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    opened = event("o-node", "node", "node-17", OutageState.OPEN)
    for _ in range(3):
        async with transaction(sessions) as session:
            await plan_notices(session=session, event=opened, now=NOW)
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxRow.id))).all()
    assert len(rows) == 2


async def test_resolution_is_told_to_exactly_those_told_of_the_outage(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with transaction(sessions) as session:
        await plan_notices(
            session=session, event=event("o-node", "node", "node-17", OutageState.OPEN), now=NOW
        )
        await plan_notices(
            session=session,
            event=event("o-node", "node", "node-17", OutageState.RESOLVED),
            now=NOW,
        )
    resolved = {r for r in await planned(sessions, "o-node") if r[1] == "resolved"}
    assert resolved == {("c-1", "resolved", "sms", "de"), ("c-2", "resolved", "sms", "en")}


async def test_suspected_and_cancelled_outages_notify_nobody(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with transaction(sessions) as session:
        for state in (OutageState.SUSPECTED, OutageState.CANCELLED):
            assert (
                await plan_notices(
                    session=session, event=event("o-node", "node", "node-17", state), now=NOW
                )
                == 0
            )
    assert await planned(sessions, "o-node") == set()


def child_event(state: OutageState, node: str = "node-17") -> OutageEvent:
    return OutageEvent(
        outage_id="o-node",
        state=state,
        previous_state=None,
        at=NOW,
        rule_id=1,
        rule_name="r",
        scope_level="node",
        scope_id=node,
        severity="major",
        services=("internet",),
        parent_id="o-hub",
    )


def parent_event(state: OutageState) -> OutageEvent:
    return OutageEvent(
        outage_id="o-hub",
        state=state,
        previous_state=None,
        at=NOW,
        rule_id=1,
        rule_name="r",
        scope_level="hub",
        scope_id="hub-1",
        severity="major",
        services=("internet",),
        is_parent=True,
    )


async def test_an_attached_child_tells_its_customers_under_the_parent_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with transaction(sessions) as session:
        assert (
            await plan_notices(session=session, event=parent_event(OutageState.OPEN), now=NOW) == 0
        )
        await plan_notices(session=session, event=child_event(OutageState.OPEN), now=NOW)
        await plan_notices(session=session, event=child_event(OutageState.OPEN), now=NOW)
    assert await planned(sessions, "o-node") == set()
    assert {row[0] for row in await planned(sessions, "o-hub")} == {"c-1", "c-2"}
    async with sessions() as session:
        parent = await session.get(Outage, "o-hub")
    assert parent is not None and parent.affected_customers == 2


async def test_customers_told_before_the_child_attached_are_not_told_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    unattached = event("o-node", "node", "node-17", OutageState.OPEN)
    async with transaction(sessions) as session:
        await plan_notices(session=session, event=unattached, now=NOW)
        await plan_notices(session=session, event=child_event(OutageState.OPEN), now=NOW)
    assert {row[0] for row in await planned(sessions, "o-node")} == {"c-1", "c-2"}
    assert await planned(sessions, "o-hub") == set()


async def test_a_recovered_child_tells_its_customers_and_the_parent_tells_the_rest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with transaction(sessions) as session:
        await plan_notices(session=session, event=child_event(OutageState.OPEN), now=NOW)
        # node-18 (c-4) is the other child of the same parent.
        other = child_event(OutageState.OPEN, node="node-18")
        await plan_notices(session=session, event=other, now=NOW)
        await plan_notices(session=session, event=child_event(OutageState.RESOLVED), now=NOW)
    resolved = {r[0] for r in await planned(sessions, "o-hub") if r[1] == "resolved"}
    assert resolved == {"c-1", "c-2"}
    async with transaction(sessions) as session:
        await plan_notices(session=session, event=parent_event(OutageState.RESOLVED), now=NOW)
    rows = [r for r in await planned(sessions, "o-hub") if r[1] == "resolved"]
    assert sorted(r[0] for r in rows) == ["c-1", "c-2", "c-4"]  # c-4 has only e-mail
