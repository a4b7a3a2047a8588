"""Read outages for the API: lists with filters, one by its public token, their links."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.exceptions import NotFoundError
from app.inventory.models import Device, TopologyNode
from app.maintenance.models import Maintenance
from app.outages.models import Outage
from app.outages.schemas import OutageOut


def status_url(base_url: str, outage: Outage, *, timezone: str = "UTC") -> str:
    """The public page customers follow for this outage; a customer's notice names their time
    zone (`?tz=`, only the zone: nothing personal), so the page shows the times it showed."""
    url = f"{base_url.rstrip('/')}/o/{outage.public_token}"
    return url if timezone == "UTC" else f"{url}?tz={quote(timezone, safe='/')}"


def maintenance_url(base_url: str, window: Maintenance, *, timezone: str = "UTC") -> str:
    """The public page customers follow for a maintenance window, in their zone as above."""
    url = f"{base_url.rstrip('/')}/m/{window.public_token}"
    return url if timezone == "UTC" else f"{url}?tz={quote(timezone, safe='/')}"


def to_out(outage: Outage, base_url: str) -> OutageOut:
    return OutageOut(
        id=outage.id,
        rule_id=outage.rule_id,
        rule_name=outage.rule_name,
        rule_version=outage.rule_version,
        scope_level=outage.scope_level,
        scope_id=outage.scope_id,
        state=outage.state,
        severity=outage.severity,
        services=list(outage.services),
        parent_id=outage.parent_id,
        is_parent=outage.is_parent,
        started_at=outage.started_at,
        suspected_at=outage.suspected_at,
        opened_at=outage.opened_at,
        identified_at=outage.identified_at,
        monitoring_at=outage.monitoring_at,
        resolved_at=outage.resolved_at,
        cancelled_at=outage.cancelled_at,
        cause=outage.cause,
        eta=outage.eta,
        next_update_due=outage.next_update_due,
        first_contact_at=outage.first_contact_at,
        affected_customers=outage.affected_customers,
        status_url=status_url(base_url, outage),
    )


async def list_outages(
    *,
    session: AsyncSession,
    states: Sequence[str] = (),
    scope_id: str | None = None,
    after_id: str | None = None,
    limit: int = 100,
) -> list[Outage]:
    """Outages, newest first; `after_id` is the last outage of the previous page."""
    query = select(Outage).order_by(Outage.started_at.desc(), Outage.id.desc()).limit(limit)
    if states:
        query = query.where(Outage.state.in_(list(states)))
    if scope_id is not None:
        query = query.where(Outage.scope_id == scope_id)
    if after_id is not None:
        last = await session.get(Outage, after_id)
        if last is None:
            raise NotFoundError(f"cursor {after_id!r} names no outage")
        query = query.where(
            (Outage.started_at < last.started_at)
            | ((Outage.started_at == last.started_at) & (Outage.id < after_id))
        )
    return list(await session.scalars(query))


async def outage_near(*, session: AsyncSession, scope_id: str) -> bool:
    """Whether an outage that is not closed covers `scope_id`: on the place itself, on a place
    above it, or on a place or device under it (what its maintenance page must not call done)."""
    related = {scope_id}
    current: str | None = scope_id
    for _ in range(8):  # region > hub > node: the chain above is short
        current = await session.scalar(
            select(TopologyNode.parent_id).where(TopologyNode.id == current)
        )
        if current is None:
            break
        related.add(current)
    hubs = select(TopologyNode.id).where(TopologyNode.parent_id == scope_id)
    nodes = select(TopologyNode.id).where(
        (TopologyNode.parent_id == scope_id) | TopologyNode.parent_id.in_(hubs)
    )
    under_nodes = select(Device.id).where((Device.node_id == scope_id) | Device.node_id.in_(nodes))
    found = await session.scalar(
        select(Outage.id)
        .where(
            Outage.active_key.is_not(None),
            Outage.scope_id.in_(related)
            | Outage.scope_id.in_(nodes)
            | Outage.scope_id.in_(under_nodes),
        )
        .limit(1)
    )
    return found is not None


async def outage_by_token(*, session: AsyncSession, token: str) -> Outage:
    outage: Outage | None = await session.scalar(select(Outage).where(Outage.public_token == token))
    if outage is None:
        raise NotFoundError("no such outage")
    return outage
