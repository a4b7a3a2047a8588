"""Who hears about an outage, on which channels: outage events in, outbox rows out.

Planning is idempotent: every row's key is customer x outage x stage x channel and rows are
inserted with ON CONFLICT DO NOTHING, so a replayed outage event plans nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, distinct, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.inventory.models import Customer, Device, TopologyNode, customer_devices
from app.notifications.models import OutboxRow
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.outages.models import Outage

# The notice stage an outage state starts; states absent here notify nobody.
STAGE_FOR_STATE: dict[OutageState, str] = {
    OutageState.OPEN: "detected",
    OutageState.RESOLVED: "resolved",
}

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Recipient:
    customer_id: str
    language: str
    channels: tuple[str, ...]


def nodes_under(scope_level: str, scope_id: str) -> Select[str]:
    """Select the ids of the `node`-level places inside a scope."""
    if scope_level == "node":
        return select(TopologyNode.id).where(TopologyNode.id == scope_id)
    if scope_level == "hub":
        return select(TopologyNode.id).where(TopologyNode.parent_id == scope_id)
    hubs = select(TopologyNode.id).where(TopologyNode.parent_id == scope_id)
    return select(TopologyNode.id).where(TopologyNode.parent_id.in_(hubs))


async def affected_customers(
    *, session: AsyncSession, scope_level: str, scope_id: str, services: Sequence[str]
) -> list[Recipient]:
    """Customers with a device in the scope that carries one of the outage's services.

    An outage with no services listed affects every service of the devices in its scope.
    """
    query = select(
        Customer.id, Customer.language, Customer.channels, Customer.opt_outs, Device.services
    ).join(customer_devices, customer_devices.c.customer_id == Customer.id)
    query = query.join(Device, Device.id == customer_devices.c.device_id)
    if scope_level == "device":
        query = query.where(Device.id == scope_id)
    else:
        query = query.where(Device.node_id.in_(nodes_under(scope_level, scope_id)))
    wanted = frozenset(services)
    recipients: dict[str, Recipient] = {}
    for customer_id, language, channels, opt_outs, device_services in await session.execute(query):
        if customer_id in recipients or (wanted and wanted.isdisjoint(device_services)):
            continue
        opted_out = frozenset(opt_outs or ())
        recipients[customer_id] = Recipient(
            customer_id=customer_id,
            language=language,
            channels=tuple(c for c in channels if c not in opted_out),
        )
    return list(recipients.values())


async def _told_customers(session: AsyncSession, outage_id: str) -> list[Recipient]:
    """The customers a `detected` notice was planned for, with the channels they had then."""
    rows = await session.execute(
        select(OutboxRow.customer_id, OutboxRow.language, OutboxRow.channel)
        .where(OutboxRow.outage_id == outage_id, OutboxRow.stage == "detected")
        .order_by(OutboxRow.id)
    )
    channels: dict[str, list[str]] = {}
    languages: dict[str, str] = {}
    for customer_id, language, channel in rows:
        channels.setdefault(customer_id, []).append(channel)
        languages[customer_id] = language
    return [Recipient(c, languages[c], tuple(ch)) for c, ch in channels.items()]


async def plan_notices(*, session: AsyncSession, event: OutageEvent, now: datetime) -> int:
    """Write the outbox rows an outage event calls for; return how many rows it asked for.

    Correlated outages: a child attached to a parent plans its customers under the parent's
    id, so a customer under several failed nodes of one hub hears once; customers told about
    the child before it was attached are not told again. The parent itself plans only its
    resolution (to everyone told under it).
    """
    stage = STAGE_FOR_STATE.get(event.state)
    if stage is None:
        return 0
    plans: list[tuple[str, list[Recipient]]] = []
    if event.is_parent:
        if stage == "resolved":
            plans.append((event.outage_id, await _told_customers(session, event.outage_id)))
    elif stage == "detected":
        recipients = await affected_customers(
            session=session,
            scope_level=event.scope_level,
            scope_id=event.scope_id,
            services=event.services,
        )
        await _set_affected(session, event.outage_id, len(recipients))
        if event.parent_id is None:
            plans.append((event.outage_id, recipients))
        else:
            told_before = {r.customer_id for r in await _told_customers(session, event.outage_id)}
            fresh = [r for r in recipients if r.customer_id not in told_before]
            plans.append((event.parent_id, fresh))
    else:
        plans.append((event.outage_id, await _told_customers(session, event.outage_id)))
        if event.parent_id is not None:
            mine = {
                r.customer_id
                for r in await affected_customers(
                    session=session,
                    scope_level=event.scope_level,
                    scope_id=event.scope_id,
                    services=event.services,
                )
            }
            told_under_parent = await _told_customers(session, event.parent_id)
            plans.append((event.parent_id, [r for r in told_under_parent if r.customer_id in mine]))
    count = 0
    for outage_id, recipients in plans:
        rows = [
            {
                "customer_id": r.customer_id,
                "outage_id": outage_id,
                "stage": stage,
                "channel": channel,
                "language": r.language,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for r in recipients
            for channel in r.channels
        ]
        await insert_outbox_rows(session=session, rows=rows)
        count += len(rows)
    if event.parent_id is not None and stage == "detected":
        told = await session.scalar(
            select(func.count(distinct(OutboxRow.customer_id))).where(
                OutboxRow.outage_id == event.parent_id, OutboxRow.stage == "detected"
            )
        )
        await _set_affected(session, event.parent_id, int(told or 0))
    return count


async def _set_affected(session: AsyncSession, outage_id: str, count: int) -> None:
    await session.execute(
        update(Outage).where(Outage.id == outage_id).values(affected_customers=count)
    )


async def insert_outbox_rows(*, session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    """Bulk-insert outbox rows, skipping any whose unique key already exists."""
    batch = list(rows)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(batch), CHUNK):
        statement = insert(OutboxRow).on_conflict_do_nothing(
            index_elements=["customer_id", "outage_id", "stage", "sequence", "channel"]
        )
        await session.execute(statement, batch[start : start + CHUNK])
