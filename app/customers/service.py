"""Find the outages a customer is affected by, and record that they asked.

An outage affects a customer when its scope contains one of the customer's devices (the
device itself, its node, the node's hub or the hub's region) and it hits a service that
device carries (an outage listing no services hits them all). Only outages customers have
been told about count: `open`, `identified`, `monitoring`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.customers.schemas import CustomerOutage, CustomerOutages
from app.exceptions import NotFoundError
from app.inventory.models import Customer, Device, TopologyNode, customer_devices
from app.outages.lifecycle import OutageState
from app.outages.models import Outage
from app.outages.queries import status_url

TOLD_STATES = tuple(state.value for state in OutageState if state.customers_told)


class ContactSink(Protocol):
    """Where customer contacts go (the `contacts` topic in production)."""

    async def record(self, customer_id: str, at: datetime) -> None:
        """Record that the customer got in touch at `at`."""


async def customer_id_by_phone(*, session: AsyncSession, phone: str) -> str:
    """Return the customer with this E.164 number (the first by id when several share it)."""
    customer_id: str | None = await session.scalar(
        select(Customer.id).where(Customer.phone == phone).order_by(Customer.id).limit(1)
    )
    if customer_id is None:
        raise NotFoundError("no customer with this phone number")
    return customer_id


async def _device_scopes(
    session: AsyncSession, customer_id: str
) -> list[tuple[set[tuple[str, str]], frozenset[str]]]:
    """For each of the customer's devices: the (level, id) scopes containing it, its services."""
    node = aliased(TopologyNode)
    hub = aliased(TopologyNode)
    rows = await session.execute(
        select(Device.id, Device.node_id, Device.services, node.parent_id, hub.parent_id)
        .join(customer_devices, customer_devices.c.device_id == Device.id)
        .outerjoin(node, node.id == Device.node_id)
        .outerjoin(hub, hub.id == node.parent_id)
        .where(customer_devices.c.customer_id == customer_id)
    )
    devices = []
    for device_id, node_id, services, hub_id, region_id in rows:
        scopes = {("device", device_id), ("node", node_id)}
        if hub_id is not None:
            scopes.add(("hub", hub_id))
        if region_id is not None:
            scopes.add(("region", region_id))
        devices.append((scopes, frozenset(services or ())))
    return devices


def _affects(outage: Outage, devices: list[tuple[set[tuple[str, str]], frozenset[str]]]) -> bool:
    scope = (outage.scope_level, outage.scope_id)
    wanted = frozenset(outage.services)
    return any(
        scope in scopes and (not wanted or not wanted.isdisjoint(services))
        for scopes, services in devices
    )


async def customer_outages(
    *, session: AsyncSession, customer_id: str, base_url: str
) -> CustomerOutages:
    """The outages customers were told about that affect this customer, newest first."""
    if await session.get(Customer, customer_id) is None:
        raise NotFoundError(f"customer {customer_id} does not exist")
    devices = await _device_scopes(session, customer_id)
    scope_ids = {scope_id for scopes, _ in devices for _, scope_id in scopes}
    found: list[Outage] = []
    if scope_ids:
        candidates = await session.scalars(
            select(Outage)
            .where(
                Outage.active_key.is_not(None),
                Outage.state.in_(TOLD_STATES),
                Outage.scope_id.in_(scope_ids),
            )
            .order_by(Outage.started_at.desc(), Outage.id.desc())
        )
        found = [outage for outage in candidates if _affects(outage, devices)]
    return CustomerOutages(
        customer_id=customer_id,
        affected=bool(found),
        outages=[
            CustomerOutage(
                id=o.id,
                state=o.state,
                services=list(o.services),
                started_at=o.started_at,
                opened_at=o.opened_at,
                eta=o.eta,
                next_update_due=o.next_update_due,
                cause=o.cause,
                status_url=status_url(base_url, o),
            )
            for o in found
        ],
    )
