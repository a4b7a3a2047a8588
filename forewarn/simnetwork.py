"""The simulated access network: regions > hubs > nodes > devices and their customers.

`build_network` turns a scenario's sizes into an inventory document (topology, devices,
customers with a realistic mix of names, languages, channels, phones and e-mails) and what
the simulator's timeline needs to know about it.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from forewarn.scenario import SUBSCRIBER_DIGITS, Scenario

FIRST_NAMES = {
    "en": ["Olivia", "James", "Amelia", "Noah", "Grace", "Oliver", "Emily", "Harry"],
    "de": ["Anna", "Lukas", "Sophie", "Felix", "Marie", "Jonas", "Lena", "Paul"],
    "es": ["Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Daniel", "Carmen", "Pablo"],
    "vi": ["An", "Minh", "Linh", "Huy", "Trang", "Duc", "Mai", "Khanh"],
    "hi": ["Aarav", "Priya", "Vivaan", "Ananya", "Rohan", "Diya", "Arjun", "Kavya"],
}
LAST_NAMES = {
    "en": ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans"],
    "de": ["Weber", "Müller", "Schmidt", "Fischer", "Wagner", "Becker"],
    "es": ["García", "Martínez", "López", "Sánchez", "Romero", "Navarro"],
    "vi": ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ"],
    "hi": ["Sharma", "Patel", "Singh", "Gupta", "Kumar", "Iyer"],
}


@dataclass(frozen=True, slots=True)
class SimDevice:
    id: str
    kind: str  # "cpe" (modem), "stb" (set-top box) or "olt"
    node: str
    hub: str
    region: str
    customer: str | None = None
    modem: str | None = None  # a set-top box's household modem


@dataclass(frozen=True, slots=True)
class SimCustomer:
    id: str
    phone: str
    node: str
    hub: str
    region: str
    has_tv: bool


@dataclass(slots=True)
class SimulatedNetwork:
    """The generated inventory document and what the timeline needs to know about it."""

    inventory: dict[str, Any]
    devices: list[SimDevice]
    customers: list[SimCustomer]
    device_node: dict[str, str] = field(default_factory=dict)

    def places(self, scope: str) -> set[str]:
        """The scope and every place under it (a device's own node for a device)."""
        if scope in self.device_node:
            return {scope, self.device_node[scope]}
        found = {scope}
        for node in self.inventory["nodes"]:  # parents are listed before their children
            if node.get("parent") in found:
                found.add(node["id"])
        return found


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def weighted(rng: random.Random, weights: dict[Any, float]) -> Any:
    """One of the keys, drawn with the given weights."""
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def build_network(scenario: Scenario) -> SimulatedNetwork:
    """Generate regions > hubs > nodes > devices, and one customer per modem."""
    spec = scenario.network
    rng = random.Random(scenario.seed)  # noqa: S311 - simulation, not security
    nodes: list[dict[str, str]] = []
    inventory_devices: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []
    devices: list[SimDevice] = []
    sim_customers: list[SimCustomer] = []
    index = 0
    for region in spec.region_ids():
        nodes.append({"id": region, "level": "region"})
        for h in range(1, spec.hubs_per_region + 1):
            hub = f"{region}-hub-{h}"
            nodes.append({"id": hub, "level": "hub", "parent": region})
            for n in range(1, spec.nodes_per_hub + 1):
                node = f"{hub}-node-{n}"
                nodes.append({"id": node, "level": "node", "parent": hub})
                if spec.olt_per_node:
                    olt = f"olt-{node}"
                    inventory_devices.append({"id": olt, "node": node, "services": []})
                    devices.append(SimDevice(olt, "olt", node, hub, region))
                for _ in range(spec.modems_per_node):
                    index += 1
                    customer_id, modem = f"c-{index:05d}", f"cpe-{index:05d}"
                    owned = [modem]
                    inventory_devices.append(
                        {"id": modem, "node": node, "services": ["internet", "voice"]}
                    )
                    devices.append(SimDevice(modem, "cpe", node, hub, region, customer_id))
                    has_tv = rng.random() < spec.set_top_box_share
                    if has_tv:
                        stb = f"stb-{index:05d}"
                        owned.append(stb)
                        inventory_devices.append({"id": stb, "node": node, "services": ["tv"]})
                        devices.append(SimDevice(stb, "stb", node, hub, region, customer_id, modem))
                    customer = _customer(rng, scenario, index, owned)
                    customers.append(customer)
                    sim_customers.append(
                        SimCustomer(customer_id, customer["phone"], node, hub, region, has_tv)
                    )
    return SimulatedNetwork(
        inventory={"nodes": nodes, "devices": inventory_devices, "customers": customers},
        devices=devices,
        customers=sim_customers,
        device_node={d.id: d.node for d in devices},
    )


def _customer(
    rng: random.Random, scenario: Scenario, index: int, devices: list[str]
) -> dict[str, Any]:
    people = scenario.customers
    language = str(weighted(rng, dict(people.languages)))
    first = rng.choice(FIRST_NAMES[language])
    last = rng.choice(LAST_NAMES[language])
    # A bijection on the subscriber digits: unique per customer, and not 00000001.
    digits = (index * 48271 + 13_572_468) % 10**SUBSCRIBER_DIGITS
    customer: dict[str, Any] = {
        "id": f"c-{index:05d}",
        "name": f"{first} {last}",
        "phone": f"{rng.choice(people.phone_prefixes)}{digits:0{SUBSCRIBER_DIGITS}d}",
        "email": f"{_ascii(first)}.{_ascii(last)}{index}@{people.email_domain}",
        "language": language,
        "timezone": people.timezone,
        "channels": str(weighted(rng, people.channels)).split("+"),
        "devices": devices,
        "priority": rng.random() < people.priority_share,
    }
    if rng.random() < people.quiet_hours_share:
        customer["quiet_hours"] = people.quiet_hours.model_dump()
    return customer
