"""Who hears about an outage, on which channels, and when: outage events in, outbox rows out.

Planning is idempotent: every row's key is customer x outage x stage x sequence x channel and
rows are inserted with ON CONFLICT DO NOTHING, so a replayed outage event plans nothing twice.

When a row may be sent is decided here too (`next_attempt_at`):
- quiet hours: only an urgent notice (a critical outage, or a priority customer's `detected`)
  goes out during the customer's quiet hours; the rest wait for the morning, and an outage
  that began and ended in the night becomes one combined `overnight` notice;
- flap control: a `resolved` notice waits until the clear has held for `resolve_hold`; if the
  same rule opens on the same scope meanwhile, the held notice is dropped and the customer is
  not told again that it is down (they never heard it was fixed);
- a customer hears at most `max_notices` notices of one outage (its resolution always).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, distinct, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.inventory.models import TopologyNode
from app.maintenance.models import Maintenance
from app.notifications.models import OutboxRow
from app.notifications.quiet import quiet_until
from app.notifications.recipients import (
    Recipient,
    affected_customers,
    listed_channels,
    told_customers,
    told_detected_of,
)
from app.notifications.truth import still_failing, taken_over_since
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.outages.models import Outage
from app.settings import Settings

# The notice stage an outage state starts; states absent here notify nobody.
STAGE_FOR_STATE: dict[OutageState, str] = {
    OutageState.OPEN: "detected",
    OutageState.RESOLVED: "resolved",
}

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    resolve_hold: timedelta = timedelta(minutes=10)
    max_notices: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanPolicy:
        """The policy the settings give (`FOREWARN_RESOLVE_HOLD_MINUTES`, `_MAX_NOTICES_...`)."""
        return cls(
            resolve_hold=timedelta(minutes=settings.resolve_hold_minutes),
            max_notices=settings.max_notices_per_outage,
        )


def stage_of(event: OutageEvent) -> str | None:
    """The notice stage an outage event starts, or None when it tells nobody anything."""
    if event.update_sequence > 0 and event.state.customers_told:
        return "update"
    return STAGE_FOR_STATE.get(event.state)


def _send_at(recipient: Recipient, earliest: datetime, urgent: bool) -> datetime:
    if urgent:
        return earliest
    return quiet_until(earliest, recipient.timezone, recipient.quiet_hours) or earliest


async def plan_notices(
    *,
    session: AsyncSession,
    event: OutageEvent,
    now: datetime,
    policy: PlanPolicy | None = None,
) -> int:
    """Write the outbox rows an outage event calls for; return how many rows it asked for.

    Correlated outages: a child attached to a parent plans its customers under the parent's
    id, so a customer under several failed nodes of one hub hears once; customers told about
    the child before it was attached are not told again. The parent itself plans only its
    resolution (to everyone told under it).
    """
    policy = policy or PlanPolicy()
    stage = stage_of(event)
    if stage is None:
        return 0
    plans: list[tuple[str, list[Recipient]]] = []
    if event.is_parent:
        if stage in ("resolved", "update"):
            plans.append(
                (event.outage_id, await told_customers(session=session, outage_id=event.outage_id))
            )
    elif stage == "detected":
        recipients = await affected_customers(
            session=session,
            scope_level=event.scope_level,
            scope_id=event.scope_id,
            services=event.services,
        )
        await _set_affected(session, event.outage_id, len(recipients))
        if event.parent_id is None:
            plans.append((event.outage_id, recipients))
        else:
            told_before = {
                r.customer_id
                for r in await told_customers(session=session, outage_id=event.outage_id)
            }
            fresh = [r for r in recipients if r.customer_id not in told_before]
            plans.append((event.parent_id, fresh))
    elif stage == "update":
        if event.update_sequence > policy.max_notices - 2:
            return 0  # the cap: only the resolution is still to come
        plans.append(
            (event.outage_id, await told_customers(session=session, outage_id=event.outage_id))
        )
    else:
        plans.append(
            (event.outage_id, await told_customers(session=session, outage_id=event.outage_id))
        )
        if event.parent_id is not None:
            mine = {
                r.customer_id
                for r in await affected_customers(
                    session=session,
                    scope_level=event.scope_level,
                    scope_id=event.scope_id,
                    services=event.services,
                )
            }
            told_under_parent = await told_customers(session=session, outage_id=event.parent_id)
            plans.append((event.parent_id, [r for r in told_under_parent if r.customer_id in mine]))
    count = 0
    for outage_id, recipients in plans:
        count += await _plan(session, event, stage, outage_id, recipients, now, policy)
    if event.parent_id is not None and stage == "detected":
        told = await session.scalar(
            select(func.count(distinct(OutboxRow.customer_id))).where(
                OutboxRow.outage_id == event.parent_id, OutboxRow.stage == "detected"
            )
        )
        await _set_affected(session, event.parent_id, int(told or 0))
    return count


async def _plan(
    session: AsyncSession,
    event: OutageEvent,
    stage: str,
    outage_id: str,
    recipients: list[Recipient],
    now: datetime,
    policy: PlanPolicy,
) -> int:
    sequence = event.update_sequence if stage == "update" else 0
    continuing: set[str] = set()
    overnight: set[str] = set()
    if stage in ("detected", "resolved"):
        # A customer already told of another outage that is still open (another rule on the
        # same place, say) hears of this one neither coming nor going: one "we know", and one
        # "fixed" when the last of them ends.
        elsewhere = await _told_of_another_open_outage(
            session, outage_id, [r.customer_id for r in recipients]
        )
        if stage == "resolved":
            recipients = [r for r in recipients if r.customer_id not in elsewhere]
    if stage == "detected":
        continuing = await _drop_held_resolutions(session, event, outage_id, now) | elsewhere
    elif stage == "resolved":
        overnight = await _fold_night_into_one(session, outage_id, now)
    urgent_outage = event.severity == "critical"
    rows: list[dict[str, Any]] = []
    for r in recipients:
        row_stage, state, send_at = stage, "pending", now
        if stage == "resolved":
            send_at = now + policy.resolve_hold
            if r.customer_id in overnight:
                row_stage = "overnight"
        if r.customer_id in continuing:
            state = "superseded"  # they know it is down already; they will hear it is fixed
        send_at = _send_at(r, send_at, urgent=stage == "detected" and (urgent_outage or r.priority))
        rows.extend(
            {
                "customer_id": r.customer_id,
                "outage_id": outage_id,
                "stage": row_stage,
                "sequence": sequence,
                "channel": channel,
                "language": r.language,
                "services": list(r.services),
                "state": state,
                "attempts": 0,
                "priority": 1 if r.priority else 0,
                "created_at": now,
                "next_attempt_at": send_at,
            }
            for channel in r.channels
        )
    await insert_outbox_rows(session=session, rows=rows)
    return len(rows)


async def _told_of_another_open_outage(
    session: AsyncSession, outage_id: str, customers: Sequence[str]
) -> set[str]:
    """Those of `customers` with a `detected` notice planned for another outage still open."""
    other_open = select(Outage.id).where(Outage.active_key.is_not(None), Outage.id != outage_id)
    return await told_detected_of(session=session, outages=other_open, customers=customers)


async def _drop_held_resolutions(
    session: AsyncSession, event: OutageEvent, outage_id: str, now: datetime
) -> set[str]:
    """Cancel resolved notices still held for the same rule and scope; return their customers."""
    earlier = select(Outage.id).where(
        Outage.rule_id == event.rule_id,
        Outage.scope_level == event.scope_level,
        Outage.scope_id == event.scope_id,
        Outage.id != outage_id,
    )
    held = and_(
        OutboxRow.outage_id.in_(earlier),
        OutboxRow.stage == "resolved",
        OutboxRow.state == "pending",
        OutboxRow.next_attempt_at > now,
    )
    customers = set(await session.scalars(select(OutboxRow.customer_id).where(held).distinct()))
    if customers:
        await session.execute(
            update(OutboxRow).where(held).values(state="superseded", last_error="flap")
        )
    return customers


async def _fold_night_into_one(session: AsyncSession, outage_id: str, now: datetime) -> set[str]:
    """Customers whose `detected` notice still waits for the morning get one `overnight`
    notice instead of two; their waiting notices are dropped. Return those customers."""
    # Held for the morning: never tried yet (a row waiting to be retried has an error).
    waiting = and_(
        OutboxRow.outage_id == outage_id,
        OutboxRow.stage.in_(("detected", "update")),
        OutboxRow.state == "pending",
        OutboxRow.next_attempt_at > now,
        OutboxRow.attempts == 0,
        OutboxRow.last_error.is_(None),
    )
    held = set(
        await session.scalars(
            select(OutboxRow.customer_id).where(waiting, OutboxRow.stage == "detected").distinct()
        )
    )
    sent = set(
        await session.scalars(
            select(OutboxRow.customer_id)
            .where(
                OutboxRow.outage_id == outage_id,
                OutboxRow.stage == "detected",
                OutboxRow.state.in_(("sent", "sending", "unconfirmed")),
            )
            .distinct()
        )
    )
    night = held - sent
    if night:
        ids = sorted(night)
        for start in range(0, len(ids), CHUNK):
            await session.execute(
                update(OutboxRow)
                .where(waiting, OutboxRow.customer_id.in_(ids[start : start + CHUNK]))
                .values(state="superseded", last_error="overnight")
            )
    return night


async def _set_affected(session: AsyncSession, outage_id: str, count: int) -> None:
    await session.execute(
        update(Outage).where(Outage.id == outage_id).values(affected_customers=count)
    )


async def insert_outbox_rows(*, session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    """Bulk-insert outbox rows, skipping any whose unique key already exists."""
    batch = list(rows)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(batch), CHUNK):
        statement = insert(OutboxRow).on_conflict_do_nothing(
            index_elements=["customer_id", "outage_id", "stage", "sequence", "channel"]
        )
        await session.execute(statement, batch[start : start + CHUNK])


async def plan_survey(*, session: AsyncSession, outage_id: str, now: datetime) -> int:
    """Ask the customers told of an outage, by SMS, how well we kept them informed."""
    recipients = [
        Recipient(
            r.customer_id,
            r.language,
            ("sms",),
            r.timezone,
            r.quiet_hours,
            r.priority,
            services=r.services,
        )
        for r in await told_customers(session=session, outage_id=outage_id)
        if "sms" in r.channels
    ]
    rows = [
        {
            "customer_id": r.customer_id,
            "outage_id": outage_id,
            "stage": "survey",
            "sequence": 0,
            "channel": "sms",
            "language": r.language,
            "services": list(r.services),
            "state": "pending",
            "attempts": 0,
            "priority": 0,
            "created_at": now,
            "next_attempt_at": _send_at(r, now, urgent=False),
        }
        for r in recipients
    ]
    await insert_outbox_rows(session=session, rows=rows)
    return len(rows)


async def plan_maintenance_notices(
    *, session: AsyncSession, window: Maintenance, stage: str, now: datetime
) -> int:
    """Tell the customers under a maintenance window's scope about it (one stage of three).

    While the work runs its services are down, so the `started` notice avoids the channels
    that depend on them, as an outage's notices do.

    `completed` says everything works again, so it goes only to customers for whom that is
    true (see `app.notifications.truth`): nobody under an outage customers were told of,
    nobody told `detected` of an outage since the work began (that outage's resolution is
    their news; no late "completed" follows it). While an outage affecting some of them is
    only suspected, their notice is not decided: the window's claim is released and it is
    planned again on the next round (the others' rows are not planned twice).
    """
    level = await session.scalar(
        select(TopologyNode.level).where(TopologyNode.id == window.scope_id)
    )
    if level is None:
        return 0
    recipients = await affected_customers(
        session=session, scope_level=level, scope_id=window.scope_id, services=window.services
    )
    if stage == "maintenance_completed":
        ids = [r.customer_id for r in recipients]
        failing = await still_failing(session=session, customers=ids)
        out = failing.told | await taken_over_since(
            session=session, since=window.starts_at, customers=ids
        )
        if failing.suspected - out:
            window.completed_planned_at = None  # decide again once those outages are decided
        recipients = [r for r in recipients if r.customer_id not in out | failing.suspected]
    rows: list[dict[str, Any]] = []
    for r in recipients:
        channels = r.channels
        if stage != "maintenance_started":
            channels = await listed_channels(session, r.customer_id)
        rows.extend(
            {
                "customer_id": r.customer_id,
                "outage_id": None,
                "maintenance_id": window.id,
                "stage": stage,
                "sequence": 0,
                "channel": channel,
                "language": r.language,
                "services": list(r.services),
                "state": "pending",
                "attempts": 0,
                "priority": 1 if r.priority else 0,
                "created_at": now,
                "next_attempt_at": _send_at(r, now, urgent=False),
            }
            for channel in channels
        )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), CHUNK):
        statement = insert(OutboxRow).on_conflict_do_nothing(
            index_elements=["customer_id", "maintenance_id", "stage", "channel"]
        )
        await session.execute(statement, rows[start : start + CHUNK])
    return len(rows)
