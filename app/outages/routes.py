"""`/v1/outages`: what Forewarn detected, and what it told whom."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Entity, record
from app.clock import utc_now
from app.deps import Engineer, SessionDep, SettingsDep, Viewer
from app.notifications.planner import PlanPolicy, plan_notices
from app.outages.lifecycle import OutageState
from app.outages.models import Outage
from app.outages.noc import acknowledge, post_update, resolve
from app.outages.queries import list_outages, outage_detail, to_out
from app.outages.schemas import NocResult, OutageDetail, OutageOut, OutagePage, ResolveIn, UpdateIn
from app.outages.update_texts import TEMPLATE_STATE
from app.settings import Settings

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


@router.get("/{outage_id}")
async def get_outage(
    outage_id: str, session: SessionDep, settings: SettingsDep, _viewer: Viewer
) -> OutageDetail:
    """One outage with its timeline and its notices by stage, channel and state."""
    return await outage_detail(
        session=session, outage_id=outage_id, base_url=settings.public_base_url
    )


def _policy(settings: Settings) -> PlanPolicy:
    return PlanPolicy(
        resolve_hold=timedelta(minutes=settings.resolve_hold_minutes),
        max_notices=settings.max_notices_per_outage,
    )


def _audit_view(outage: Outage) -> dict[str, Any]:
    """What the audit log keeps of an outage: its state, cause and ETA."""
    eta = outage.eta.isoformat() if outage.eta is not None else None
    return {"state": outage.state, "cause": outage.cause, "eta": eta}


async def _view_before(session: AsyncSession, outage_id: str) -> dict[str, Any] | None:
    """The outage's audit view before a change, read under the lock the change takes."""
    outage = await session.get(Outage, outage_id, with_for_update=True)
    return _audit_view(outage) if outage is not None else None


async def _audit(
    session: AsyncSession,
    actor: str,
    action: str,
    outage: Outage,
    before: dict[str, Any] | None,
) -> None:
    await record(
        session=session,
        actor=actor,
        action=action,
        entity=Entity.OUTAGE,
        entity_id=outage.id,
        before=before,
        after=_audit_view(outage),
    )


@router.post("/{outage_id}/acknowledge")
async def acknowledge_outage(
    outage_id: str, session: SessionDep, settings: SettingsDep, engineer: Engineer
) -> OutageOut:
    """Take the outage on (recorded on its timeline; customers are not told)."""
    before = await _view_before(session, outage_id)
    outage = await acknowledge(session=session, outage_id=outage_id, actor=engineer.name)
    await _audit(session, engineer.name, "acknowledge", outage, before)
    return to_out(outage, settings.public_base_url)


@router.post("/{outage_id}/updates", status_code=201)
async def post_outage_update(
    outage_id: str, body: UpdateIn, session: SessionDep, settings: SettingsDep, engineer: Engineer
) -> NocResult:
    """Tell the affected customers something new; each is promised the next update."""
    state = OutageState(body.state) if body.state else None
    if state is None and body.template is not None:
        state = TEMPLATE_STATE.get(body.template)
    before = await _view_before(session, outage_id)
    outage, event = await post_update(
        session=session,
        outage_id=outage_id,
        actor=engineer.name,
        next_update_interval=settings.next_update_interval,
        messages={language.value: text for language, text in body.messages.items()},
        template=body.template.value if body.template else None,
        cause=body.cause,
        eta=body.eta,
        state=state,
    )
    await _audit(session, engineer.name, "update", outage, before)
    planned = await plan_notices(
        session=session, event=event, now=utc_now(), policy=_policy(settings)
    )
    return NocResult(outage=to_out(outage, settings.public_base_url), notices_planned=planned)


@router.post("/{outage_id}/resolve")
async def resolve_outage(
    outage_id: str, body: ResolveIn, session: SessionDep, settings: SettingsDep, engineer: Engineer
) -> NocResult:
    """Resolve the outage (and those attached to it); its customers hear it is fixed."""
    before = await _view_before(session, outage_id)
    outage, events = await resolve(
        session=session, outage_id=outage_id, actor=engineer.name, message=body.message
    )
    await _audit(session, engineer.name, "resolve", outage, before)
    planned = 0
    for event in events:
        planned += await plan_notices(
            session=session, event=event, now=utc_now(), policy=_policy(settings)
        )
    return NocResult(outage=to_out(outage, settings.public_base_url), notices_planned=planned)
