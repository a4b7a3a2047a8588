"""`/v1/audit`: who changed rules, outages, inventory, maintenance and tokens, and how."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit.schemas import AuditOut
from app.audit.service import MAX_LIMIT, Entity, list_entries
from app.deps import Engineer, SessionDep

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
async def get_audit(
    session: SessionDep,
    _engineer: Engineer,
    entity: Entity | None = None,
    entity_id: Annotated[str | None, Query(max_length=128)] = None,
    actor: Annotated[str | None, Query(max_length=128, description="A token's name.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> list[AuditOut]:
    """Audit entries, newest first, filtered by entity, entity id and actor."""
    entries = await list_entries(
        session=session, entity=entity, entity_id=entity_id, actor=actor, limit=limit
    )
    return [AuditOut.model_validate(entry) for entry in entries]
