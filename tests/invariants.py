"""Invariants the suites check where they can, written against the tables, not the planner.

`assert_nobody_hears_it_works_while_out`: no customer is told "resolved" or "works again"
(`resolved`, `overnight`, `maintenance_completed`) while an outage that is not closed covers
one of their devices — a notice still to go out counts, and so does one sent after the outage
began.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.inventory.models import Device, TopologyNode, customer_devices
from app.notifications.models import OutboxRow
from app.outages.models import Outage

GOOD_NEWS = ("resolved", "overnight", "maintenance_completed")
# Rows that reached, or still may reach, the customer.
GOING_OUT = ("pending", "held", "sending")
GONE_OUT = ("sent", "unconfirmed")


async def _places_under(session: AsyncSession, level: str, scope_id: str) -> set[str]:
    """The node ids inside a region, hub or node (a device scope has none)."""
    if level == "device":
        return set()
    children: dict[str, list[str]] = {}
    for place, parent in await session.execute(select(TopologyNode.id, TopologyNode.parent_id)):
        if parent is not None:
            children.setdefault(parent, []).append(place)
    found, todo = set(), [scope_id]
    while todo:
        place = todo.pop()
        found.add(place)
        todo.extend(children.get(place, ()))
    return found


async def assert_nobody_hears_it_works_while_out(session: AsyncSession) -> None:
    """Fail naming each customer told good news while an outage covering them is not closed."""
    broken: list[str] = []
    open_outages = await session.scalars(select(Outage).where(Outage.active_key.is_not(None)))
    for outage in open_outages:
        places = await _places_under(session, outage.scope_level, outage.scope_id)
        wanted = set(outage.services or ())
        devices = select(Device.id, Device.services)
        if outage.scope_level == "device":
            devices = devices.where(Device.id == outage.scope_id)
        else:
            devices = devices.where(Device.node_id.in_(sorted(places)))
        covered = {
            device
            for device, services in await session.execute(devices)
            if not wanted or wanted & set(services or ())
        }
        if not covered:
            continue
        customers = set(
            await session.scalars(
                select(customer_devices.c.customer_id).where(
                    customer_devices.c.device_id.in_(sorted(covered))
                )
            )
        )
        began = outage.started_at
        for row in await session.scalars(
            select(OutboxRow).where(
                OutboxRow.stage.in_(GOOD_NEWS), OutboxRow.customer_id.in_(sorted(customers))
            )
        ):
            told_after = row.state in GONE_OUT and (row.sent_at or row.created_at) >= began
            if row.state in GOING_OUT or told_after:
                broken.append(
                    f"{row.customer_id} {row.stage} ({row.state}) while {outage.id} "
                    f"({outage.state} on {outage.scope_level} {outage.scope_id}) is not closed"
                )
    assert not broken, "told it works while it does not:\n" + "\n".join(broken)
