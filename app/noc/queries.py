"""Read one outage as the NOC sees it: its record, its timeline, its notices."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.exceptions import NotFoundError
from app.noc.schemas import NoticeCount, OutageDetail
from app.notifications.models import OutboxRow
from app.outages.models import Outage, TimelineEntry
from app.outages.queries import to_out
from app.outages.schemas import TimelineOut


async def outage_detail(*, session: AsyncSession, outage_id: str, base_url: str) -> OutageDetail:
    """One outage with its timeline and its notices counted by stage, channel and state."""
    outage = await session.get(Outage, outage_id)
    if outage is None:
        raise NotFoundError(f"outage {outage_id} does not exist")
    timeline = await session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.outage_id == outage_id)
        .order_by(TimelineEntry.at, TimelineEntry.id)
    )
    counts = await session.execute(
        select(OutboxRow.stage, OutboxRow.channel, OutboxRow.state, func.count())
        .where(OutboxRow.outage_id == outage_id)
        .group_by(OutboxRow.stage, OutboxRow.channel, OutboxRow.state)
        .order_by(OutboxRow.stage, OutboxRow.channel, OutboxRow.state)
    )
    return OutageDetail(
        **to_out(outage, base_url).model_dump(),
        timeline=[
            TimelineOut(at=t.at, kind=t.kind, state=t.state, actor=t.actor, message=t.message)
            for t in timeline
        ],
        notices=[
            NoticeCount(stage=stage, channel=channel, state=state, count=count)
            for stage, channel, state, count in counts
        ],
    )
