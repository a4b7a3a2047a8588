"""Who an outage or a maintenance window reaches, and on which of their channels."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.inventory.consent import opt_outs_of
from app.inventory.models import Customer, Device, TopologyNode, customer_devices
from app.notifications.models import OutboxRow

# Customer ids per lookup query.
CHUNK = 5000

# A channel that depends on a service: during an outage of it, the customer's other listed
# channel is used instead (e-mail read over the home broadband, SMS over our own cells).
CHANNEL_NEEDS: dict[str, str] = {"email": "internet", "sms": "mobile"}


@dataclass(frozen=True, slots=True)
class Recipient:
    customer_id: str
    language: str
    channels: tuple[str, ...]
    timezone: str = "UTC"
    quiet_hours: dict[str, str] | None = None
    priority: bool = False
    # The customer's affected services, in the outage's order: what their notices name.
    services: tuple[str, ...] = ()


def nodes_under(scope_level: str, scope_id: str) -> Select[str]:
    """Select the ids of the `node`-level places inside a scope."""
    if scope_level == "node":
        return select(TopologyNode.id).where(TopologyNode.id == scope_id)
    if scope_level == "hub":
        return select(TopologyNode.id).where(TopologyNode.parent_id == scope_id)
    hubs = select(TopologyNode.id).where(TopologyNode.parent_id == scope_id)
    return select(TopologyNode.id).where(TopologyNode.parent_id.in_(hubs))


def usable_channels(
    listed: Sequence[str], opted_out: Iterable[str], down: Iterable[str]
) -> tuple[str, ...]:
    """The listed channels minus opt-outs, and minus those the outage takes down when another
    listed channel still works."""
    channels = [c for c in listed if c not in set(opted_out)]
    broken = set(down)
    working = [c for c in channels if CHANNEL_NEEDS.get(c) not in broken]
    return tuple(working or channels)


async def affected_customers(
    *, session: AsyncSession, scope_level: str, scope_id: str, services: Sequence[str]
) -> list[Recipient]:
    """Customers with a device in the scope that carries one of the outage's services.

    An outage with no services listed affects every service of the devices in its scope.
    """
    query = select(
        Customer.id,
        Customer.language,
        Customer.channels,
        Customer.opt_outs,
        Customer.timezone,
        Customer.quiet_hours,
        Customer.priority,
        Device.services,
    ).join(customer_devices, customer_devices.c.customer_id == Customer.id)
    query = query.join(Device, Device.id == customer_devices.c.device_id)
    if scope_level == "device":
        query = query.where(Device.id == scope_id)
    else:
        query = query.where(Device.node_id.in_(nodes_under(scope_level, scope_id)))
    wanted = frozenset(services)
    found: dict[str, tuple[Any, ...]] = {}
    hit: dict[str, set[str]] = {}
    for row in await session.execute(query):
        customer_id, device_services = row[0], frozenset(row[7] or ())
        affected = device_services & wanted if wanted else device_services
        if wanted and not affected:
            continue
        found.setdefault(customer_id, tuple(row))
        hit.setdefault(customer_id, set()).update(affected)
    opted_out = await opt_outs_of(
        session=session, listed={customer_id: row[3] for customer_id, row in found.items()}
    )
    order = {service: i for i, service in enumerate(services)}
    recipients = []
    for customer_id, (_, language, channels, _o, zone, quiet, priority, _s) in found.items():
        down = {CHANNEL_NEEDS[c] for c in CHANNEL_NEEDS if CHANNEL_NEEDS[c] in hit[customer_id]}
        recipients.append(
            Recipient(
                customer_id=customer_id,
                language=language,
                channels=usable_channels(channels, opted_out[customer_id], down),
                timezone=zone,
                quiet_hours=quiet,
                priority=bool(priority),
                services=tuple(sorted(hit[customer_id], key=lambda s: (order.get(s, 0), s))),
            )
        )
    return recipients


async def told_customers(*, session: AsyncSession, outage_id: str) -> list[Recipient]:
    """The customers a `detected` notice was planned for, with the channels they had then
    and the services that notice named."""
    rows = await session.execute(
        select(
            OutboxRow.customer_id,
            OutboxRow.language,
            OutboxRow.channel,
            OutboxRow.services,
            Customer.timezone,
            Customer.quiet_hours,
            Customer.priority,
            Customer.opt_outs,
        )
        .join(Customer, Customer.id == OutboxRow.customer_id)
        .where(OutboxRow.outage_id == outage_id, OutboxRow.stage == "detected")
        .order_by(OutboxRow.id)
    )
    planned: list[tuple[str, str]] = []
    listed: dict[str, list[str]] = {}
    facts: dict[str, tuple[Any, ...]] = {}
    for customer_id, language, channel, services, zone, quiet, priority, opt_outs in rows:
        planned.append((customer_id, channel))
        listed[customer_id] = opt_outs or []
        facts[customer_id] = (language, zone, quiet, bool(priority), tuple(services or ()))
    opted_out = await opt_outs_of(session=session, listed=listed)
    channels: dict[str, list[str]] = {}
    for customer_id, channel in planned:
        if channel not in opted_out[customer_id]:
            channels.setdefault(customer_id, []).append(channel)
    return [
        Recipient(
            c,
            facts[c][0],
            tuple(channels.get(c, ())),
            facts[c][1],
            facts[c][2],
            facts[c][3],
            services=facts[c][4],
        )
        for c in facts
    ]


async def listed_channels(session: AsyncSession, customer_id: str) -> tuple[str, ...]:
    """The channels the customer listed, minus those they (or the inventory) opted out of."""
    row = (
        await session.execute(
            select(Customer.channels, Customer.opt_outs).where(Customer.id == customer_id)
        )
    ).one()
    opted_out = await opt_outs_of(session=session, listed={customer_id: row[1]})
    return usable_channels(row[0], opted_out[customer_id], ())


async def told_detected_of(
    *, session: AsyncSession, outages: Select[Any], customers: Collection[str]
) -> set[str]:
    """Those of `customers` with a `detected` notice planned for one of `outages` (a select
    of outage ids), looked up in chunks so a regional outage's customers fit a query."""
    ids = sorted(set(customers))
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(
            await session.scalars(
                select(OutboxRow.customer_id)
                .where(
                    OutboxRow.stage == "detected",
                    OutboxRow.outage_id.in_(outages),
                    OutboxRow.customer_id.in_(ids[start : start + CHUNK]),
                )
                .distinct()
            )
        )
    return found
