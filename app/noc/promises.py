"""Keep the promise every notice makes: an update by the time it names, and a survey after.

Run periodically by the planner. Rows are claimed with FOR UPDATE SKIP LOCKED (PostgreSQL),
so several planners never post the same automatic update twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.maintenance.models import Maintenance
from app.noc.service import post_update
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.outages.models import Outage

TOLD = [OutageState.OPEN.value, OutageState.IDENTIFIED.value, OutageState.MONITORING.value]


async def post_due_updates(
    *, session: AsyncSession, now: datetime, interval: timedelta, limit: int = 100
) -> list[OutageEvent]:
    """Post an automatic "still working on it" update on each outage whose promise is due."""
    due = await session.scalars(
        select(Outage.id)
        .where(
            Outage.state.in_(TOLD),
            Outage.parent_id.is_(None),
            Outage.next_update_due <= now,
        )
        .order_by(Outage.next_update_due)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    events = []
    for outage_id in list(due):
        _, event = await post_update(
            session=session,
            outage_id=outage_id,
            actor="forewarn",
            next_update_interval=interval,
            automatic=True,
            clock=lambda: now,
        )
        events.append(event)
    return events


async def outages_due_a_survey(
    *, session: AsyncSession, now: datetime, after: timedelta, limit: int = 100
) -> list[Outage]:
    """Resolved outages whose survey time has come (and not more than a day ago); claim them."""
    outages = await session.scalars(
        select(Outage)
        .where(
            Outage.state == OutageState.RESOLVED.value,
            Outage.parent_id.is_(None),
            Outage.survey_planned_at.is_(None),
            Outage.resolved_at <= now - after,
            Outage.resolved_at > now - after - timedelta(days=1),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = list(outages)
    for outage in claimed:
        outage.survey_planned_at = now
    return claimed


async def overdue_promises(*, session: AsyncSession, now: datetime, grace: timedelta) -> int:
    """How many outages have an update overdue by more than `grace` (a broken promise)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Outage)
        .where(Outage.state.in_(TOLD), Outage.next_update_due < now - grace)
    )
    return int(count or 0)


async def outages_by_state(*, session: AsyncSession) -> dict[tuple[str, str], int]:
    """Count outages that are not closed by (state, severity)."""
    rows = await session.execute(
        select(Outage.state, Outage.severity, func.count())
        .where(Outage.active_key.is_not(None))
        .group_by(Outage.state, Outage.severity)
    )
    return {(state, severity): count for state, severity, count in rows}


async def maintenance_due(
    *,
    session: AsyncSession,
    now: datetime,
    settle: timedelta = timedelta(0),
    limit: int = 100,
) -> list[tuple[Maintenance, str]]:
    """Maintenance windows with a notice stage due now; each is claimed (marked planned).

    `completed` is due `settle` after the window ended: detection was held on the scope
    while the work ran, so it needs that long to see whether the place works again.
    """
    due: list[tuple[Maintenance, str]] = []
    live = and_(Maintenance.cancelled_at.is_(None), Maintenance.ends_at > now - timedelta(days=1))
    stages = (
        ("maintenance_scheduled", Maintenance.scheduled_planned_at, Maintenance.starts_at > now),
        (
            "maintenance_started",
            Maintenance.started_planned_at,
            and_(Maintenance.starts_at <= now, Maintenance.ends_at > now),
        ),
        (
            "maintenance_completed",
            Maintenance.completed_planned_at,
            and_(Maintenance.ends_at <= now - settle, Maintenance.started_planned_at.is_not(None)),
        ),
    )
    for stage, mark, when in stages:
        windows = await session.scalars(
            select(Maintenance)
            .where(live, mark.is_(None), when)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        for window in windows:
            setattr(window, mark.key, now)
            due.append((window, stage))
    return due
