"""Persisting transitions is idempotent: replays never open an outage twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.outages.lifecycle import OutageState, Transition
from app.outages.models import Outage, TimelineEntry
from app.outages.service import active_outages, apply_transition
from app.rules.models import Rule

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=30)


def transition(state: OutageState, at: datetime, started: datetime = T0) -> Transition:
    return Transition(
        rule_id=1,
        rule_version=1,
        rule_name="modems-down-on-node",
        scope_level="node",
        scope_id="node-17",
        to_state=state,
        at=at,
        started_at=started,
        severity="major",
        services=("internet",),
        details={"down": 12, "devices": 20, "ratio": 0.6},
    )


@pytest.fixture
async def rule(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        session.add(
            Rule(
                id=1,
                name="modems-down-on-node",
                kind="ratio_down",
                version=1,
                enabled=True,
                definition={},
                created_at=T0,
                updated_at=T0,
            )
        )


async def apply(
    sessions: async_sessionmaker[AsyncSession], *transitions: Transition
) -> list[OutageState | None]:
    results: list[OutageState | None] = []
    async with transaction(sessions) as session:
        for item in transitions:
            event = await apply_transition(
                session=session, transition=item, next_update_interval=INTERVAL, clock=lambda: T0
            )
            results.append(None if event is None else event.state)
    return results


async def outage_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Outage)) or 0)


async def test_a_full_lifecycle_is_stamped_and_leaves_one_outage(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    opened_at = T0 + timedelta(seconds=30)
    resolved_at = T0 + timedelta(minutes=5)
    assert await apply(
        sessions,
        transition(OutageState.SUSPECTED, opened_at),
        transition(OutageState.OPEN, opened_at),
        transition(OutageState.RESOLVED, resolved_at),
    ) == [OutageState.SUSPECTED, OutageState.OPEN, OutageState.RESOLVED]
    async with sessions() as session:
        outage = (await session.scalars(select(Outage))).one()
        timeline = (await session.scalars(select(TimelineEntry.state))).all()
    assert outage.state == "resolved"
    assert (outage.suspected_at, outage.opened_at, outage.resolved_at) == (
        opened_at,
        opened_at,
        resolved_at,
    )
    assert outage.started_at == T0
    assert outage.active_key is None and outage.next_update_due is None
    assert sorted(timeline) == ["open", "resolved", "suspected"]


async def test_replaying_an_applied_batch_opens_nothing_twice_and_republishes(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    batch = [
        transition(OutageState.SUSPECTED, T0 + timedelta(seconds=30)),
        transition(OutageState.OPEN, T0 + timedelta(seconds=30)),
        transition(OutageState.RESOLVED, T0 + timedelta(minutes=5)),
    ]
    await apply(sessions, *batch)
    replayed = await apply(sessions, *batch)
    assert replayed == [OutageState.SUSPECTED, OutageState.OPEN, OutageState.RESOLVED]
    assert await outage_count(sessions) == 1


async def test_an_open_outage_replayed_while_still_open_is_not_duplicated(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    opened = transition(OutageState.OPEN, T0 + timedelta(seconds=30))
    await apply(sessions, opened)
    assert await apply(sessions, opened) == [OutageState.OPEN]
    assert await outage_count(sessions) == 1
    async with sessions() as session:
        [active] = await active_outages(session=session)
    assert active.state is OutageState.OPEN and active.devices_at_open == 20


async def test_a_new_outage_after_resolution_is_a_second_outage(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    await apply(
        sessions,
        transition(OutageState.OPEN, T0),
        transition(OutageState.RESOLVED, T0 + timedelta(minutes=5)),
    )
    later = T0 + timedelta(hours=1)
    assert await apply(sessions, transition(OutageState.OPEN, later, started=later)) == [
        OutageState.OPEN
    ]
    assert await outage_count(sessions) == 2


async def test_a_clear_without_an_outage_is_ignored(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    assert await apply(sessions, transition(OutageState.RESOLVED, T0)) == [None]
    assert await outage_count(sessions) == 0


async def test_next_update_is_promised_when_customers_are_told(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    await apply(sessions, transition(OutageState.OPEN, T0))
    async with sessions() as session:
        outage = (await session.scalars(select(Outage))).one()
    assert outage.next_update_due == T0 + INTERVAL


async def test_the_first_customer_contact_is_stamped_once_and_gives_the_lead_time(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    from app.detection.telemetry import Contact, Topology
    from app.outages.service import record_first_contacts

    await apply(sessions, transition(OutageState.OPEN, T0))
    topology = Topology(
        device_node={"cpe-1": "node-17"},
        parent={"node-17": "hub-1"},
        customer_nodes={"c-1": ("node-17",)},
        phone_customer={"+4915112345678": "c-1"},
    )
    call = T0 + timedelta(minutes=7)
    async with transaction(sessions) as session:
        lead = await record_first_contacts(
            session=session,
            contacts=[Contact(call.timestamp(), phone="+4915112345678")],
            topology=topology,
        )
        again = await record_first_contacts(
            session=session,
            contacts=[Contact((call + timedelta(minutes=1)).timestamp(), customer_id="c-1")],
            topology=topology,
        )
    assert lead == [420.0]
    assert again == []
    async with sessions() as session:
        outage = (await session.scalars(select(Outage))).one()
    assert outage.first_contact_at == call


async def test_an_outage_opened_by_a_spike_of_calls_has_the_spikes_first_call_as_first_contact(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    first_call = T0 - timedelta(minutes=4)
    spike = transition(OutageState.OPEN, T0)
    spike = replace(spike, details={"contacts": 6, "first_contact_ts": first_call.timestamp()})
    await apply(sessions, spike)
    async with sessions() as session:
        outage = (await session.scalars(select(Outage))).one()
    assert outage.first_contact_at == first_call
