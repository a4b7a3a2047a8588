"""What the NOC does to an outage: acknowledge it, post updates, resolve it.

Each change is stamped on the outage, written to its timeline with the event it causes (the
timeline is the outbox the detectors publish `outage-events` from), and returned, so the
caller can plan the notices in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock, utc_now
from app.exceptions import ConflictError, InvalidInputError, NotFoundError
from app.notifications.models import OutboxRow
from app.outages.events import OutageEvent
from app.outages.lifecycle import STAMP_COLUMN, OutageState, can_move
from app.outages.models import Outage, TimelineEntry
from app.outages.service import outage_event


async def _active(session: AsyncSession, outage_id: str) -> Outage:
    outage = await session.get(Outage, outage_id, with_for_update=True)
    if outage is None:
        raise NotFoundError(f"outage {outage_id} does not exist")
    if outage.parent_id is not None:
        raise ConflictError(
            f"outage {outage_id} is part of {outage.parent_id}; act on that outage instead"
        )
    return outage


def _entry(
    outage: Outage,
    kind: str,
    actor: str,
    at: datetime,
    message: dict[str, object],
    event: OutageEvent | None,
) -> TimelineEntry:
    return TimelineEntry(
        outage_id=outage.id,
        at=at,
        kind=kind,
        state=outage.state,
        actor=actor,
        message=message,
        event=event.to_dict() if event is not None else None,
    )


def _stamp(outage: Outage, target: OutageState, at: datetime) -> None:
    outage.state = target.value
    if getattr(outage, STAMP_COLUMN[target]) is None:
        setattr(outage, STAMP_COLUMN[target], at)
    if target.is_closed:
        outage.active_key = None
        outage.next_update_due = None


async def acknowledge(
    *,
    session: AsyncSession,
    outage_id: str,
    actor: str,
    note: str | None = None,
    clock: Clock = utc_now,
) -> Outage:
    """Record that an engineer has taken the outage on (customers are not told of this).

    An internal `note` goes on the timeline with it; on an outage already taken on, the note
    is added to the timeline by itself.
    """
    outage = await _active(session, outage_id)
    if OutageState(outage.state).is_closed:
        raise ConflictError(f"outage {outage_id} is {outage.state}")
    noted: dict[str, object] = {"note": note} if note is not None else {}
    if outage.acknowledged_at is None:
        now = clock()
        outage.acknowledged_at, outage.acknowledged_by = now, actor
        session.add(_entry(outage, "acknowledged", actor, now, noted, None))
    elif note is not None:
        session.add(_entry(outage, "note", actor, clock(), noted, None))
    return outage


async def told_languages(*, session: AsyncSession, outage_id: str) -> set[str]:
    """The languages of the customers told of an outage (those its updates go to)."""
    languages = await session.scalars(
        select(OutboxRow.language)
        .where(OutboxRow.outage_id == outage_id, OutboxRow.stage == "detected")
        .distinct()
    )
    return set(languages)


async def check_languages(
    *, session: AsyncSession, outage_id: str, messages: dict[str, str], fallback: str | None
) -> None:
    """Refuse messages that leave out a language its customers speak, unless a fallback is
    named: nobody gets another language's text without the NOC having chosen it."""
    if not messages or fallback is not None:
        return
    missing = sorted(await told_languages(session=session, outage_id=outage_id) - set(messages))
    if missing:
        raise InvalidInputError(
            [
                {
                    "field": "messages",
                    "reason": f"no text in {', '.join(missing)}, which customers told of this "
                    "outage read; add it, or name a fallback_language",
                }
            ]
        )


async def post_update(
    *,
    session: AsyncSession,
    outage_id: str,
    actor: str,
    next_update_interval: timedelta,
    messages: dict[str, str] | None = None,
    fallback_language: str | None = None,
    template: str | None = None,
    cause: str | None = None,
    eta: datetime | None = None,
    state: OutageState | None = None,
    note: str | None = None,
    automatic: bool = False,
    clock: Clock = utc_now,
) -> tuple[Outage, OutageEvent]:
    """Tell customers something new (or that work goes on); promise the next update.

    A cause or an ETA moves an open outage to `identified`; `state` may move it on to
    `monitoring` (a fix is applied) or back to `identified`. An update by the NOC must say
    something new (words, a template, a new cause, ETA or state) and have words for every
    language its customers read, or a named fallback; only the automatic one may say nothing.
    The internal `note` is kept on the timeline entry, where no notice or public page reads it.
    """
    outage = await _active(session, outage_id)
    current = OutageState(outage.state)
    if not current.customers_told:
        raise ConflictError(f"outage {outage_id} is {current}; customers were not told of it")
    now = clock()
    target = state or current
    if state is None and current is OutageState.OPEN and (cause or eta):
        target = OutageState.IDENTIFIED
    news = (
        messages
        or template is not None
        or (cause is not None and cause != outage.cause)
        or (eta is not None and eta != outage.eta)
        or target is not current
    )
    if not automatic and not news:
        raise InvalidInputError(
            [
                {
                    "field": "body",
                    "reason": "an update must tell customers something: messages, a template, "
                    "or a new cause, eta or state (an internal note alone goes with "
                    "POST /v1/outages/{id}/acknowledge)",
                }
            ]
        )
    await check_languages(
        session=session, outage_id=outage_id, messages=messages or {}, fallback=fallback_language
    )
    if target is not current:
        if target.is_closed or not can_move(current, target):
            raise ConflictError(f"an update cannot move an outage from {current} to {target}")
        _stamp(outage, target, now)
    if cause is not None:
        outage.cause = cause
    if eta is not None:
        outage.eta = eta
    outage.update_sequence += 1
    outage.next_update_due = now + next_update_interval
    event = outage_event(
        outage, target, current if target is not current else None, now, outage.update_sequence
    )
    message: dict[str, object] = {
        "sequence": outage.update_sequence,
        "messages": messages or {},
        "fallback_language": fallback_language,
        "template": template,
        "cause": cause,
        "eta": eta.isoformat() if eta else None,
        "automatic": automatic,
    }
    if note is not None:
        message["note"] = note  # internal: read by the NOC's GET, never rendered
    session.add(_entry(outage, "update", actor, now, message, event))
    return outage, event


async def resolve(
    *,
    session: AsyncSession,
    outage_id: str,
    actor: str,
    message: str | None = None,
    clock: Clock = utc_now,
) -> tuple[Outage, list[OutageEvent]]:
    """Resolve the outage (and the outages attached to it); customers hear it is fixed."""
    outage = await _active(session, outage_id)
    current = OutageState(outage.state)
    if current is OutageState.SUSPECTED:
        raise ConflictError(f"outage {outage_id} is only suspected; nobody was told of it")
    if current.is_closed:
        raise ConflictError(f"outage {outage_id} is already {current}")
    now = clock()
    events: list[OutageEvent] = []
    children = await session.scalars(
        select(Outage).where(Outage.parent_id == outage.id, Outage.active_key.is_not(None))
    )
    for child in children:
        child_state = OutageState(child.state)
        _stamp(child, OutageState.RESOLVED, now)
        event = outage_event(child, OutageState.RESOLVED, child_state, now)
        session.add(_entry(child, "transition", actor, now, {"resolved_with": outage.id}, event))
        events.append(event)
    _stamp(outage, OutageState.RESOLVED, now)
    event = outage_event(outage, OutageState.RESOLVED, current, now)
    session.add(_entry(outage, "transition", actor, now, {"message": message}, event))
    events.append(event)
    return outage, events
