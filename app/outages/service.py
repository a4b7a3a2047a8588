"""Persist the engine's transitions idempotently and say what to publish.

At-least-once delivery means the detector may apply the same transition twice (after a crash
between the database commit and the Kafka offset commit). Every function here is therefore
safe to repeat: a transition already applied is recognised by the outage's state and stamps,
and is reported again (so a publish lost in the crash happens after all) without a second row.
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock, utc_now
from app.domain.contacts import Contact
from app.domain.topology import Topology
from app.outages.events import OutageEvent
from app.outages.lifecycle import (
    FIRST_CONTACT_DETAIL,
    STAMP_COLUMN,
    ActiveOutage,
    OutageState,
    Transition,
    can_move,
)
from app.outages.models import Outage, TimelineEntry

log = structlog.get_logger("forewarn.outages")


def new_outage_id() -> str:
    return f"out_{uuid.uuid4().hex[:24]}"


def outage_event(
    outage: Outage,
    state: OutageState,
    previous: OutageState | None,
    at: datetime,
    update_sequence: int = 0,
) -> OutageEvent:
    """The event that tells the planner (and anyone else) what happened to an outage."""
    return OutageEvent(
        outage_id=outage.id,
        state=state,
        previous_state=previous,
        at=at,
        rule_id=outage.rule_id,
        rule_name=outage.rule_name,
        scope_level=outage.scope_level,
        scope_id=outage.scope_id,
        severity=outage.severity,
        services=tuple(outage.services),
        parent_id=outage.parent_id,
        is_parent=outage.is_parent,
        update_sequence=update_sequence,
    )


@dataclass
class _Flush:
    """One `apply_transitions` call: what it has locked and written so far.

    `locked` holds the active outage of each scope key it has locked or written (None: it has
    none); the transaction holds those rows until it commits, so nobody else changes them.
    When `deferred`, new and changed outages wait in the session for one flush at the end
    instead of a savepoint and a flush each, and the lookups between run without flushing
    (what they cannot see yet, the outages inserted here, is kept in `inserted`).
    """

    session: AsyncSession
    interval: timedelta
    clock: Clock
    deferred: bool
    locked: dict[str, Outage | None] = field(default_factory=dict)
    inserted: dict[str, list[Outage]] = field(default_factory=dict)  # by scope key

    async def lock(self, keys: set[str]) -> None:
        """Lock the active outages of `keys` not locked yet, in one query."""
        missing = keys - self.locked.keys()
        if not missing:
            return
        rows = await self.session.scalars(
            select(Outage).where(Outage.active_key.in_(sorted(missing))).with_for_update()
        )
        found = {outage.active_key: outage for outage in rows}
        for key in missing:
            self.locked[key] = found.get(key)

    async def scalar(self, statement: Any) -> Any:
        """Run a lookup; a deferred flush keeps its pending writes for the end."""
        if not self.deferred:
            return await self.session.scalar(statement)
        with self.session.no_autoflush:
            return await self.session.scalar(statement)


async def _parent_outage_id(flush: _Flush, transition: Transition) -> str | None:
    key = transition.parent_key
    if key is None:
        return None
    parent = flush.locked.get(key)
    if parent is not None:  # opened (or followed) in this flush
        return parent.id
    parent_id: str | None = await flush.scalar(select(Outage.id).where(Outage.active_key == key))
    return parent_id


def _stamp(outage: Outage, state: OutageState) -> datetime | None:
    value: datetime | None = getattr(outage, STAMP_COLUMN[state])
    return value


async def apply_transitions(
    *,
    session: AsyncSession,
    transitions: Sequence[Transition],
    next_update_interval: timedelta,
    clock: Clock = utc_now,
) -> list[OutageEvent | None]:
    """Apply transitions in order, in the caller's transaction; return each one's event to
    publish, or None where it is stale.

    A replayed transition (already applied, possibly already followed by later ones) returns
    the same event again instead of creating a second outage.

    A burst of outages (a hub's nodes going down, each suspected then open) is written in a
    few statements: the active outages of all the transitions' scopes are locked in one
    query, followed in memory, and every insert and update goes out in one flush inside a
    savepoint. If that flush meets a conflict (another detector opened one of these outages
    a moment ago), the savepoint is rolled back and the transitions are applied again one
    at a time, each insert in a savepoint of its own, following the other detector's rows.
    """
    if not transitions:
        return []
    try:
        async with session.begin_nested():
            flush = _Flush(session, next_update_interval, clock, deferred=True)
            events = await _apply_all(flush, transitions)
            await session.flush()
        return events
    except IntegrityError:
        flush = _Flush(session, next_update_interval, clock, deferred=False)
        return await _apply_all(flush, transitions)


async def _apply_all(flush: _Flush, transitions: Sequence[Transition]) -> list[OutageEvent | None]:
    await flush.lock({t.scope_key for t in transitions})
    return [await _apply(flush, transition) for transition in transitions]


async def _apply(flush: _Flush, transition: Transition) -> OutageEvent | None:
    session, target, key = flush.session, transition.to_state, transition.scope_key
    await flush.lock({key})
    active = flush.locked[key]
    if active is None:
        replayed = await _already_applied(flush, transition)
        if replayed is not None:
            return outage_event(replayed, target, None, transition.at)
        if not can_move(None, target):
            return None
        try:
            outage = await _insert(flush, transition)
        except IntegrityError:
            if flush.deferred:
                raise  # apply_transitions starts again, one at a time
            del flush.locked[key]
            await flush.lock({key})
            if flush.locked[key] is not None:  # another detector opened it a moment ago
                return await _apply(flush, transition)
            if not await _rule_exists(session, transition.rule_id):
                log.warning("transition of a deleted rule dropped", rule_id=transition.rule_id)
                return None  # deleted after the engine loaded it: no outage can name it
            raise
        flush.locked[key] = outage
        return outage_event(outage, target, None, transition.at)

    current = OutageState(active.state)
    if transition.parent_scope_id is not None and active.parent_id is None:
        active.parent_id = await _parent_outage_id(flush, transition)
        if active.parent_id is not None:
            session.add(_timeline(active.id, transition, current, kind="attached"))
    if current is target or (target is OutageState.OPEN and current.customers_told):
        return outage_event(active, target, None, _stamp(active, target) or transition.at)
    if not can_move(current, target):
        return None
    _move(active, target, transition.at, flush.clock(), flush.interval)
    if target.is_closed:
        flush.locked[key] = None
    active.details = {**active.details, **transition.details}
    _stamp_first_contact(active, transition)
    event = outage_event(active, target, current, transition.at)
    session.add(_timeline(active.id, transition, target, event=event))
    return event


async def _rule_exists(session: AsyncSession, rule_id: int) -> bool:
    """Whether the rule an outage names is still stored: the table is the one `rule_id`
    refers to, so the outages know the rules only by their foreign key."""
    (reference,) = Outage.__table__.c.rule_id.foreign_keys
    rule_key = reference.column
    found = await session.scalar(select(rule_key).where(rule_key == rule_id))
    return found is not None


def _stamp_first_contact(outage: Outage, transition: Transition) -> None:
    """An outage found by a spike of calls has its first contact in the spike itself (the
    contacts that opened it came before it existed, so `record_first_contacts` missed them)."""
    first = transition.details.get(FIRST_CONTACT_DETAIL)
    if first is None:
        return
    at = datetime.fromtimestamp(first, UTC)
    if outage.first_contact_at is None or at < outage.first_contact_at:
        outage.first_contact_at = at


def _move(
    outage: Outage, target: OutageState, at: datetime, now: datetime, interval: timedelta
) -> None:
    outage.state = target.value
    setattr(outage, STAMP_COLUMN[target], at)
    if target is OutageState.OPEN:
        outage.next_update_due = now + interval
    if target.is_closed:
        outage.active_key = None
        outage.next_update_due = None


async def _already_applied(flush: _Flush, transition: Transition) -> Outage | None:
    """Find a closed outage of the same rule and scope that this transition already built."""
    stored: Outage | None = await flush.scalar(
        select(Outage)
        .where(
            Outage.rule_id == transition.rule_id,
            Outage.scope_level == transition.scope_level,
            Outage.scope_id == transition.scope_id,
            Outage.started_at <= transition.at,
        )
        .order_by(Outage.started_at.desc())
        .limit(1)
    )
    candidates = [stored] if stored is not None else []
    candidates += [
        o for o in flush.inserted.get(transition.scope_key, ()) if o.started_at <= transition.at
    ]
    if not candidates:
        return None
    latest = max(candidates, key=lambda outage: outage.started_at)
    closed_at = latest.resolved_at or latest.cancelled_at
    if closed_at is not None and transition.at <= closed_at:
        return latest
    return None


async def _insert(flush: _Flush, transition: Transition) -> Outage:
    """Add the outage a transition opens."""
    session = flush.session
    target = transition.to_state
    outage = Outage(
        id=new_outage_id(),
        rule_id=transition.rule_id,
        rule_version=transition.rule_version,
        rule_name=transition.rule_name,
        scope_level=transition.scope_level,
        scope_id=transition.scope_id,
        severity=transition.severity,
        services=list(transition.services),
        active_key=transition.scope_key,
        public_token=secrets.token_urlsafe(16),  # 128 bits; short enough for one SMS line
        started_at=transition.started_at,
        state=target.value,
        details=dict(transition.details),
        affected_customers=0,
        parent_id=await _parent_outage_id(flush, transition),
        is_parent=transition.is_parent,
    )
    _move(outage, target, transition.at, flush.clock(), flush.interval)
    _stamp_first_contact(outage, transition)
    if target is OutageState.OPEN:
        outage.suspected_at = transition.at
    if flush.deferred:
        session.add(outage)  # a conflict surfaces in the flush at the end
        flush.inserted.setdefault(transition.scope_key, []).append(outage)
        if outage.is_parent:
            # The flush writes updates before inserts: a child already stored that attaches
            # to this parent must find it there.
            await session.flush()
    else:
        async with session.begin_nested():  # a conflict rolls back this insert alone
            session.add(outage)
            await session.flush()
    event = outage_event(outage, target, None, transition.at)
    session.add(_timeline(outage.id, transition, target, event=event))
    return outage


def _timeline(
    outage_id: str,
    transition: Transition,
    state: OutageState,
    kind: str = "transition",
    event: OutageEvent | None = None,
) -> TimelineEntry:
    return TimelineEntry(
        outage_id=outage_id,
        at=transition.at,
        kind=kind,
        state=state.value,
        actor="detector",
        message={"rule_version": transition.rule_version, **transition.details},
        event=event.to_dict() if event is not None else None,
    )


async def unpublished_events(
    *, session: AsyncSession, limit: int = 1000
) -> list[tuple[int, OutageEvent]]:
    """Events committed with their transition but not yet confirmed on Kafka, oldest first."""
    rows = await session.execute(
        select(TimelineEntry.id, TimelineEntry.event)
        .where(TimelineEntry.published_at.is_(None), TimelineEntry.event.is_not(None))
        .order_by(TimelineEntry.id)
        .limit(limit)
    )
    return [(entry_id, OutageEvent.from_dict(event)) for entry_id, event in rows]


async def mark_published(
    *, session: AsyncSession, entry_ids: list[int], clock: Clock = utc_now
) -> None:
    """Record that these entries' events are on Kafka."""
    if entry_ids:
        await session.execute(
            update(TimelineEntry)
            .where(TimelineEntry.id.in_(entry_ids))
            .values(published_at=clock())
            .execution_options(synchronize_session=False)
        )


async def active_outages(*, session: AsyncSession) -> list[ActiveOutage]:
    """Return every outage not yet closed, in the form that seeds the detection engine."""
    outages = list(await session.scalars(select(Outage).where(Outage.active_key.is_not(None))))
    parents = {outage.id: outage.scope_id for outage in outages}
    return [
        ActiveOutage(
            rule_id=outage.rule_id,
            scope_level=outage.scope_level,
            scope_id=outage.scope_id,
            state=OutageState(outage.state),
            started_at=outage.started_at.timestamp(),
            suspected_at=outage.suspected_at.timestamp() if outage.suspected_at else None,
            devices_at_open=int(outage.details.get("devices", 0)),
            parent_scope_id=parents.get(outage.parent_id) if outage.parent_id else None,
        )
        for outage in outages
    ]


async def record_first_contacts(
    *, session: AsyncSession, contacts: Sequence[Contact], topology: Topology
) -> list[float]:
    """Stamp `first_contact_at` on open outages whose scope holds a customer who got in touch.

    The gap between an outage's `opened_at` and its first customer contact is the lead time:
    how long before the phones rang Forewarn knew. Return the lead times (seconds) of the
    outages stamped for the first time.
    """
    earliest: dict[str, float] = {}
    for contact in contacts:
        customer = contact.customer_id or topology.phone_customer.get(contact.phone or "")
        for node in topology.customer_nodes.get(customer or "", ()):
            for place in topology.chain(node):
                earliest[place] = min(earliest.get(place, math.inf), contact.ts)
    lead_times: list[float] = []
    for place, ts in earliest.items():
        at = datetime.fromtimestamp(ts, UTC)
        first = await session.execute(
            update(Outage)
            .where(
                Outage.scope_id == place,
                Outage.active_key.is_not(None),
                Outage.first_contact_at.is_(None),
            )
            .values(first_contact_at=at)
            .returning(Outage.opened_at)
        )
        lead_times += [(at - opened).total_seconds() for (opened,) in first if opened is not None]
        # A contact that arrives late but happened earlier moves the stamp back.
        await session.execute(
            update(Outage)
            .where(
                Outage.scope_id == place,
                Outage.active_key.is_not(None),
                Outage.first_contact_at > at,
            )
            .values(first_contact_at=at)
        )
    return lead_times
