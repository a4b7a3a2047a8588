"""Who may be told "it works again": nobody whose places are still failing.

A maintenance window's `completed` notice says everything works normally. That is only true
for a customer when no outage that is not closed touches one of their devices (on the
window's place, under it, above it, or anywhere else they have a device), and when no outage
has taken over their story since the work began (they were told `detected`: that outage's
resolution is the news they are waiting for, not a second "works again").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.notifications.recipients import affected_customers, told_detected_of
from app.outages.lifecycle import OutageState
from app.outages.models import Outage


@dataclass(frozen=True, slots=True)
class StillFailing:
    """Of some customers: those under an outage customers were told of, or one only suspected."""

    told: set[str] = field(default_factory=set)
    suspected: set[str] = field(default_factory=set)


async def still_failing(*, session: AsyncSession, customers: Collection[str]) -> StillFailing:
    """Split `customers` by the outages, not closed, that affect one of their devices now."""
    wanted = set(customers)
    result = StillFailing()
    if not wanted:
        return result
    outages = await session.execute(
        select(Outage.scope_level, Outage.scope_id, Outage.services, Outage.state).where(
            Outage.active_key.is_not(None)
        )
    )
    for scope_level, scope_id, services, state in outages:
        hit = {
            r.customer_id
            for r in await affected_customers(
                session=session,
                scope_level=scope_level,
                scope_id=scope_id,
                services=list(services or ()),
            )
        }
        bucket = result.suspected if state == OutageState.SUSPECTED.value else result.told
        bucket.update(hit & wanted)
    result.suspected.difference_update(result.told)
    return result


async def taken_over_since(
    *, session: AsyncSession, since: datetime, customers: Collection[str]
) -> set[str]:
    """Those of `customers` told `detected` of an outage that opened at or after `since`."""
    recent = select(Outage.id).where(Outage.opened_at >= since)
    return await told_detected_of(session=session, outages=recent, customers=customers)
