"""`/v1/maintenance`: planned work, during which detection stays quiet on its scope."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from app.deps import Engineer, SessionDep, Viewer
from app.maintenance.schemas import MaintenanceIn, MaintenanceOut
from app.maintenance.service import (
    cancel_maintenance,
    create_maintenance,
    list_maintenance,
    to_out,
)

router = APIRouter(prefix="/v1/maintenance", tags=["maintenance"])


@router.post("", status_code=201)
async def post_maintenance(
    window: MaintenanceIn, session: SessionDep, principal: Engineer
) -> MaintenanceOut:
    """Schedule a maintenance window on a region, hub or node."""
    return to_out(await create_maintenance(session=session, window=window, actor=principal.name))


@router.get("")
async def get_maintenance(
    session: SessionDep,
    _principal: Viewer,
    active_at: datetime | None = Query(default=None, description="Only windows active then."),
) -> list[MaintenanceOut]:
    """List maintenance windows, newest first."""
    return [to_out(w) for w in await list_maintenance(session=session, active_at=active_at)]


@router.delete("/{window_id}")
async def delete_maintenance(
    window_id: int, session: SessionDep, _principal: Engineer
) -> MaintenanceOut:
    """Cancel a window: it ends now, or never starts."""
    return to_out(await cancel_maintenance(session=session, window_id=window_id))
