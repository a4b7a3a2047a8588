"""Load the topology the detection engine resolves scopes with."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.topology import Topology
from app.inventory.models import Customer, Device, TopologyNode, customer_devices


async def load_topology(*, session: AsyncSession) -> Topology:
    """Read device -> node, place -> parent and where each customer is from the inventory."""
    devices = await session.execute(select(Device.id, Device.node_id))
    parents = await session.execute(
        select(TopologyNode.id, TopologyNode.parent_id).where(TopologyNode.parent_id.is_not(None))
    )
    device_node = {device: node for device, node in devices}
    customer_nodes: dict[str, set[str]] = {}
    for customer, device in await session.execute(
        select(customer_devices.c.customer_id, customer_devices.c.device_id)
    ):
        node = device_node.get(device)
        if node is not None:
            customer_nodes.setdefault(customer, set()).add(node)
    phones = await session.execute(
        select(Customer.phone, Customer.id).where(Customer.phone.is_not(None))
    )
    return Topology(
        device_node=device_node,
        parent={place: parent for place, parent in parents if parent is not None},
        customer_nodes={c: tuple(sorted(nodes)) for c, nodes in customer_nodes.items()},
        phone_customer={phone: customer for phone, customer in phones if phone},
    )
