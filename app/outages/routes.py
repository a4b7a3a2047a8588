"""`GET /v1/outages`: what Forewarn detected (one outage and NOC actions: `app/noc/`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import SessionDep, SettingsDep, Viewer
from app.outages.lifecycle import OutageState
from app.outages.queries import list_outages, to_out
from app.outages.schemas import OutagePage

router = APIRouter(prefix="/v1/outages", tags=["outages"])


@router.get("")
async def get_outages(
    session: SessionDep,
    settings: SettingsDep,
    _viewer: Viewer,
    state: Annotated[list[OutageState] | None, Query(description="Repeat for several.")] = None,
    scope_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> OutagePage:
    """Outages, newest first, optionally by state and scope; page with `after`."""
    rows = await list_outages(
        session=session,
        states=[s.value for s in state or ()],
        scope_id=scope_id,
        after_id=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    return OutagePage(
        items=[to_out(o, settings.public_base_url) for o in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )
