"""Create, list and cancel maintenance windows; load the ones the engine must honour."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock, utc_now
from app.domain.maintenance import MaintenanceWindow
from app.exceptions import InvalidInputError, NotFoundError
from app.inventory.models import TopologyNode
from app.maintenance.models import Maintenance
from app.maintenance.schemas import MaintenanceIn, MaintenanceOut, MaintenancePatch


def to_out(window: Maintenance) -> MaintenanceOut:
    return MaintenanceOut(
        id=window.id,
        scope=window.scope_id,
        start=window.starts_at,
        end=window.ends_at,
        reason=window.reason,
        note=window.note,
        services=list(window.services or ()),
        created_by=window.created_by,
        created_at=window.created_at,
        cancelled_at=window.cancelled_at,
    )


async def create_maintenance(
    *, session: AsyncSession, window: MaintenanceIn, actor: str, clock: Clock = utc_now
) -> Maintenance:
    """Store a window; its scope must be a place in the inventory."""
    if await session.get(TopologyNode, window.scope) is None:
        raise InvalidInputError(
            [{"field": "scope", "reason": f"{window.scope!r} is not a region, hub or node"}]
        )
    row = Maintenance(
        scope_id=window.scope,
        starts_at=window.start,
        ends_at=window.end,
        reason=window.reason,
        note=window.note,
        services=list(window.services),
        public_token=secrets.token_urlsafe(16),
        created_by=actor,
        created_at=clock(),
    )
    session.add(row)
    await session.flush()
    return row


async def list_maintenance(
    *, session: AsyncSession, active_at: datetime | None = None
) -> list[Maintenance]:
    query = select(Maintenance).order_by(Maintenance.starts_at.desc())
    if active_at is not None:
        query = query.where(
            Maintenance.starts_at <= active_at,
            Maintenance.ends_at > active_at,
            Maintenance.cancelled_at.is_(None),
        )
    return list(await session.scalars(query))


async def change_maintenance(
    *, session: AsyncSession, window_id: int, change: MaintenancePatch
) -> Maintenance:
    """Change a window's public reason or internal note; its times and scope stay."""
    row = await session.get(Maintenance, window_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"maintenance window {window_id} does not exist")
    if change.reason is not None:
        row.reason = change.reason
    if "note" in change.model_fields_set:
        row.note = change.note
    return row


async def cancel_maintenance(
    *, session: AsyncSession, window_id: int, clock: Clock = utc_now
) -> Maintenance:
    """End a window now (or drop it, if it has not started)."""
    row = await session.get(Maintenance, window_id)
    if row is None:
        raise NotFoundError(f"maintenance window {window_id} does not exist")
    now = clock()
    row.cancelled_at = now
    row.ends_at = min(row.ends_at, max(now, row.starts_at))
    return row


async def maintenance_windows(
    *, session: AsyncSession, now: datetime, horizon: timedelta = timedelta(days=2)
) -> list[MaintenanceWindow]:
    """Windows that have not ended a day ago and start within `horizon`, for the engine."""
    rows = await session.scalars(
        select(Maintenance).where(
            Maintenance.ends_at > now - timedelta(days=1),
            Maintenance.starts_at < now + horizon,
        )
    )
    return [
        MaintenanceWindow(row.scope_id, row.starts_at.timestamp(), row.ends_at.timestamp())
        for row in rows
    ]
