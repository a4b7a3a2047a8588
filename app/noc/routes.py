"""`/v1/outages/{id}`: one outage as the NOC sees it, and what the NOC does to it
(acknowledge, update its customers, resolve)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Entity, record
from app.clock import utc_now
from app.deps import Engineer, SessionDep, SettingsDep, Viewer
from app.exceptions import InvalidInputError, NotFoundError, PreviewUnavailableError
from app.inventory.schemas import Language
from app.noc.preview import (
    PREVIEW_NAME,
    LanguagePreview,
    UpdateDraft,
    UpdatePreview,
    UpdatePreviewer,
)
from app.noc.queries import outage_detail
from app.noc.schemas import AcknowledgeIn, NocResult, OutageDetail, ResolveIn, UpdateIn
from app.noc.service import acknowledge, check_languages, post_update, resolve
from app.notifications.planner import PlanPolicy, plan_notices
from app.outages.lifecycle import OutageState
from app.outages.models import Outage
from app.outages.queries import status_url, to_out
from app.outages.schemas import OutageOut
from app.outages.update_texts import TEMPLATE_STATE, update_text

router = APIRouter(prefix="/v1/outages", tags=["outages"])


@router.get("/{outage_id}")
async def get_outage(
    outage_id: str, session: SessionDep, settings: SettingsDep, _viewer: Viewer
) -> OutageDetail:
    """One outage with its timeline and its notices by stage, channel and state."""
    return await outage_detail(
        session=session, outage_id=outage_id, base_url=settings.public_base_url
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
    note: str | None = None,
) -> None:
    """Audit a change; an internal note given with it is kept beside the state after."""
    after = _audit_view(outage)
    if note is not None:
        after["note"] = note
    await record(
        session=session,
        actor=actor,
        action=action,
        entity=Entity.OUTAGE,
        entity_id=outage.id,
        before=before,
        after=after,
    )


@router.post("/{outage_id}/acknowledge")
async def acknowledge_outage(
    outage_id: str,
    session: SessionDep,
    settings: SettingsDep,
    engineer: Engineer,
    body: AcknowledgeIn | None = None,
) -> OutageOut:
    """Take the outage on, with an optional internal note (recorded on its timeline;
    customers are not told)."""
    note = body.note if body is not None else None
    before = await _view_before(session, outage_id)
    outage = await acknowledge(session=session, outage_id=outage_id, actor=engineer.name, note=note)
    await _audit(session, engineer.name, "acknowledge", outage, before, note)
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
        fallback_language=body.fallback_language.value if body.fallback_language else None,
        template=body.template.value if body.template else None,
        cause=body.cause,
        eta=body.eta,
        state=state,
        note=body.note,
    )
    await _audit(session, engineer.name, "update", outage, before, body.note)
    planned = await plan_notices(
        session=session, event=event, now=utc_now(), policy=PlanPolicy.from_settings(settings)
    )
    return NocResult(outage=to_out(outage, settings.public_base_url), notices_planned=planned)


@router.post("/{outage_id}/updates/preview")
async def preview_outage_update(
    outage_id: str,
    body: UpdateIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _engineer: Engineer,
    timezone: Annotated[str, Query(description="IANA zone the times are shown in")] = "UTC",
) -> UpdatePreview:
    """What each language's customers would read if this update were posted now: the SMS with
    its segments and encoding, and the e-mail subject. Nothing is sent or stored."""
    previewer: UpdatePreviewer | None = request.app.state.update_previewer
    if previewer is None:
        raise PreviewUnavailableError("this API process cannot render previews")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            [{"field": "query.timezone", "reason": "not an IANA time zone"}]
        ) from None
    outage = await session.get(Outage, outage_id)
    if outage is None:
        raise NotFoundError(f"outage {outage_id} does not exist")
    messages = {language.value: text for language, text in body.messages.items()}
    fallback = body.fallback_language.value if body.fallback_language else None
    # Refused as the update itself would be: words for every language its customers read.
    await check_languages(
        session=session, outage_id=outage_id, messages=messages, fallback=fallback
    )
    template = body.template.value if body.template else None
    languages = []
    for language in Language:
        draft = UpdateDraft(
            language=language.value,
            timezone=timezone,
            customer_name=PREVIEW_NAME,
            services=tuple(outage.services),
            started_at=outage.opened_at or outage.started_at,
            next_update_due=utc_now() + settings.next_update_interval,
            eta=body.eta or outage.eta,
            cause=body.cause if body.cause is not None else outage.cause,
            message=update_text(messages, template, language.value, fallback),
            status_url=status_url(settings.public_base_url, outage),
        )
        rendered = previewer.preview(draft, max_sms_segments=settings.sms_max_segments)
        languages.append(
            LanguagePreview(
                language=language.value,
                sms=rendered.sms,
                sms_segments=rendered.sms_segments,
                sms_encoding=rendered.sms_encoding,
                subject=rendered.subject,
            )
        )
    return UpdatePreview(
        max_sms_segments=settings.sms_max_segments, timezone=timezone, languages=languages
    )


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
            session=session, event=event, now=utc_now(), policy=PlanPolicy.from_settings(settings)
        )
    return NocResult(outage=to_out(outage, settings.public_base_url), notices_planned=planned)
