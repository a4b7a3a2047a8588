"""`/v1/inventory`: the topology, devices and customers Forewarn plans notices from."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import Admin, SessionDep, Viewer
from app.inventory.schemas import InventoryIn, InventorySummary
from app.inventory.service import inventory_summary, record_replacement, replace_inventory

router = APIRouter(prefix="/v1/inventory", tags=["inventory"])


@router.put("")
async def put_inventory(doc: InventoryIn, session: SessionDep, admin: Admin) -> InventorySummary:
    """Replace the whole inventory; every invalid field or reference is reported at once."""
    before = await inventory_summary(session=session)
    after = await replace_inventory(session=session, doc=doc)
    await record_replacement(session=session, actor=admin.name, before=before, after=after)
    return after


@router.get("/summary")
async def get_inventory_summary(session: SessionDep, _viewer: Viewer) -> InventorySummary:
    """Count the stored regions/hubs/nodes, devices and customers."""
    return await inventory_summary(session=session)
