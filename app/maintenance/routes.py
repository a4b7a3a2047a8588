"""`/v1/maintenance`: planned work, during which detection stays quiet on its scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Entity, record
from app.deps import Engineer, RowId, SessionDep, Viewer
from app.maintenance.models import Maintenance
from app.maintenance.schemas import MaintenanceIn, MaintenanceOut, MaintenancePatch
from app.maintenance.service import (
    cancel_maintenance,
    change_maintenance,
    create_maintenance,
    list_maintenance,
    to_out,
)

router = APIRouter(prefix="/v1/maintenance", tags=["maintenance"])


def _audit_view(window: Maintenance) -> dict[str, Any]:
    """What the audit log keeps of a window: scope, start, end, reason and note."""
    return {
        "scope": window.scope_id,
        "start": window.starts_at.isoformat(),
        "end": window.ends_at.isoformat(),
        "reason": window.reason,
        "note": window.note,
    }


async def _audit(
    session: AsyncSession,
    actor: str,
    action: str,
    window: Maintenance,
    before: dict[str, Any] | None,
) -> None:
    await record(
        session=session,
        actor=actor,
        action=action,
        entity=Entity.MAINTENANCE,
        entity_id=str(window.id),
        before=before,
        after=_audit_view(window),
    )


@router.post("", status_code=201)
async def post_maintenance(
    window: MaintenanceIn, session: SessionDep, principal: Engineer
) -> MaintenanceOut:
    """Schedule a maintenance window on a region, hub or node."""
    row = await create_maintenance(session=session, window=window, actor=principal.name)
    await _audit(session, principal.name, "create", row, None)
    return to_out(row)


@router.get("")
async def get_maintenance(
    session: SessionDep,
    _principal: Viewer,
    active_at: datetime | None = Query(default=None, description="Only windows active then."),
) -> list[MaintenanceOut]:
    """List maintenance windows, newest first."""
    return [to_out(w) for w in await list_maintenance(session=session, active_at=active_at)]


@router.patch("/{window_id}")
async def patch_maintenance(
    window_id: RowId, change: MaintenancePatch, session: SessionDep, principal: Engineer
) -> MaintenanceOut:
    """Change a window's public reason or its internal note."""
    existing = await session.get(Maintenance, window_id)
    before = _audit_view(existing) if existing is not None else None
    row = await change_maintenance(session=session, window_id=window_id, change=change)
    await _audit(session, principal.name, "update", row, before)
    return to_out(row)


@router.delete("/{window_id}")
async def delete_maintenance(
    window_id: RowId, session: SessionDep, principal: Engineer
) -> MaintenanceOut:
    """Cancel a window: it ends now, or never starts."""
    existing = await session.get(Maintenance, window_id)
    before = _audit_view(existing) if existing is not None else None
    row = await cancel_maintenance(session=session, window_id=window_id)
    await _audit(session, principal.name, "cancel", row, before)
    return to_out(row)
