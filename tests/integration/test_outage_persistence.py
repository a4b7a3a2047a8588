"""Persisting transitions is idempotent: replays never open an outage twice."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState, Transition
from app.outages.models import Outage, TimelineEntry
from app.outages.service import active_outages, apply_transitions
from tests.factories import apply_transition, rule_row
from tests.waiting import eventually

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


def lifecycle() -> list[Transition]:
    """Suspected and open 30 s after the condition began, resolved 5 min in."""
    return [
        transition(OutageState.SUSPECTED, T0 + timedelta(seconds=30)),
        transition(OutageState.OPEN, T0 + timedelta(seconds=30)),
        transition(OutageState.RESOLVED, T0 + timedelta(minutes=5)),
    ]


@pytest.fixture
async def rule(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        session.add(rule_row(name="modems-down-on-node", at=T0))


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
    batch = lifecycle()
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
    from app.domain.contacts import Contact
    from app.domain.topology import Topology
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


# One flush's transitions applied in one call, as the detector applies them: inserts and
# updates wait for one flush at the end, so the lookups in between must still see them.


async def apply_together(
    sessions: async_sessionmaker[AsyncSession], *transitions: Transition
) -> list[OutageEvent | None]:
    async with transaction(sessions) as session:
        return await apply_transitions(
            session=session,
            transitions=transitions,
            next_update_interval=INTERVAL,
            clock=lambda: T0,
        )


def ids_and_states(events: list[OutageEvent | None]) -> list[tuple[str, OutageState] | None]:
    return [None if e is None else (e.outage_id, e.state) for e in events]


async def test_a_whole_lifecycle_in_one_flush_is_stamped_and_replays_as_it_was(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    batch = lifecycle()
    first = ids_and_states(await apply_together(sessions, *batch))
    assert first == ids_and_states(await apply_together(sessions, *batch))
    async with sessions() as session:
        outage = (await session.scalars(select(Outage))).one()
        timeline = (await session.scalars(select(TimelineEntry.state))).all()
    assert first == [
        (outage.id, OutageState.SUSPECTED),
        (outage.id, OutageState.OPEN),
        (outage.id, OutageState.RESOLVED),
    ]
    assert (outage.suspected_at, outage.opened_at, outage.resolved_at) == (
        batch[0].at,
        batch[1].at,
        batch[2].at,
    )
    assert sorted(timeline) == ["open", "resolved", "suspected"]


async def test_a_transition_replayed_within_its_own_flush_reuses_the_outage_opened_there(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    opened = transition(OutageState.OPEN, T0)
    resolved = transition(OutageState.RESOLVED, T0 + timedelta(minutes=5))
    events = ids_and_states(await apply_together(sessions, opened, resolved, opened))
    assert await outage_count(sessions) == 1
    [(outage_id, _), _, replayed] = events  # type: ignore[misc]
    assert replayed == (outage_id, OutageState.OPEN)


async def test_children_opened_before_their_parent_in_one_flush_attach_to_it(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    child = transition(OutageState.SUSPECTED, T0)
    parent = replace(child, scope_level="hub", scope_id="hub-1", is_parent=True)
    attached = replace(child, parent_scope_id="hub-1")
    sibling = replace(attached, scope_id="node-18")
    await apply_together(sessions, child, parent, attached, sibling)
    async with sessions() as session:
        rows = {o.scope_id: o for o in await session.scalars(select(Outage))}
    assert set(rows) == {"node-17", "node-18", "hub-1"}
    assert rows["node-17"].parent_id == rows["node-18"].parent_id == rows["hub-1"].id


async def test_a_stored_child_and_a_new_one_attach_to_a_parent_opened_in_one_flush(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    stored = transition(OutageState.SUSPECTED, T0)
    await apply_together(sessions, stored)
    parent = replace(stored, scope_level="hub", scope_id="hub-1", is_parent=True)
    restated = replace(stored, parent_scope_id="hub-1")
    await apply_together(sessions, parent, restated, replace(restated, scope_id="node-18"))
    async with sessions() as session:
        rows = {o.scope_id: o for o in await session.scalars(select(Outage))}
        attached = await session.scalar(
            select(func.count()).where(TimelineEntry.kind == "attached")
        )
    assert rows["node-17"].parent_id == rows["node-18"].parent_id == rows["hub-1"].id
    assert attached == 1  # the stored child's timeline says when it was attached


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_outage_another_detector_opens_during_the_flush_is_followed_not_doubled(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    """The other detector holds node-18's row locked, so this flush's lock query waits for it,
    and inserts node-17's outage meanwhile, which that query cannot see: this flush's insert
    then conflicts, and the transitions are applied again following the other's outage."""
    await apply_together(sessions, on_node("node-18", OutageState.SUSPECTED))
    async with sessions() as other:
        await other.execute(select(Outage).where(Outage.scope_id == "node-18").with_for_update())
        theirs = await apply_transitions(
            session=other,
            transitions=[on_node("node-17", OutageState.SUSPECTED)],
            next_update_interval=INTERVAL,
            clock=lambda: T0,
        )
        ours = asyncio.create_task(
            apply_together(
                sessions,
                on_node("node-17", OutageState.OPEN),
                on_node("node-18", OutageState.OPEN),
            )
        )

        async def ours_waits_for_a_lock() -> bool:
            async with sessions() as probe:
                return bool(await probe.scalar(text(WAITING_FOR_A_LOCK)))

        await eventually(ours_waits_for_a_lock, "our flush to wait for node-18's lock", seconds=10)
        assert not ours.done()
        await other.commit()
    events = await ours
    assert await outage_count(sessions) == 2
    assert [e.outage_id for e in events if e is not None][0] == theirs[0].outage_id  # type: ignore[union-attr]
    assert [e.state for e in events if e is not None] == [OutageState.OPEN, OutageState.OPEN]


WAITING_FOR_A_LOCK = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


def on_node(scope_id: str, state: OutageState) -> Transition:
    return replace(transition(state, T0 + timedelta(seconds=30)), scope_id=scope_id)


async def test_a_transition_of_a_rule_deleted_meanwhile_is_dropped_and_the_rest_applied(
    sessions: async_sessionmaker[AsyncSession], rule: None
) -> None:
    """A rule with no outages can be deleted while a detector still runs it (it reloads its
    rules every few seconds); the outage it opens then can name no rule."""
    orphan = replace(transition(OutageState.SUSPECTED, T0), rule_id=2, scope_id="node-18")
    events = await apply_together(sessions, orphan, transition(OutageState.SUSPECTED, T0))
    assert [None if e is None else e.scope_id for e in events] == [None, "node-17"]
    assert await outage_count(sessions) == 1
