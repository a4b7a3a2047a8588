"""A small simulated access network for the demo: inventory, heartbeat telemetry, one fault.

Every `interval` each device's `cpe.online` reading is published to the telemetry topic
(key = its node). While the fault lasts, the devices on the faulty node report 0.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

FIRST_NAMES = {
    "en": ["Olivia", "James", "Amelia", "Noah", "Grace", "Oliver", "Emily", "Harry"],
    "de": ["Anna", "Lukas", "Sophie", "Felix", "Marie", "Jonas", "Lena", "Paul"],
}
LAST_NAMES = {
    "en": ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans"],
    "de": ["Weber", "Müller", "Schmidt", "Fischer", "Wagner", "Becker"],
}
DEMO_RULE: dict[str, Any] = {
    "name": "modems-down-on-node",
    "kind": "ratio_down",
    "metric": "cpe.online",
    "scope": "node",
    "threshold": 0.3,
    "clear_threshold": 0.1,
    "min_devices": 10,
    "for": "30s",
    "confirm_after": "0s",
    "severity": "major",
    "services": ["internet"],
}


@dataclass(frozen=True, slots=True)
class Fault:
    node: str
    start_after: float
    duration: float
    down_fraction: float = 0.9


@dataclass(slots=True)
class SimulatedNetwork:
    """The generated inventory document and the device -> node map it implies."""

    inventory: dict[str, Any]
    device_node: dict[str, str]


def build_network(
    *,
    regions: int = 1,
    hubs_per_region: int = 2,
    nodes_per_hub: int = 3,
    devices_per_node: int = 50,
    seed: int = 7,
) -> SimulatedNetwork:
    """Generate regions > hubs > nodes > devices, one customer per device, English and German."""
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    nodes: list[dict[str, str]] = []
    devices: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []
    device_node: dict[str, str] = {}
    region_names = ["north", "south", "east", "west"]
    for r in range(regions):
        region = region_names[r % len(region_names)] + ("" if r < 4 else str(r))
        nodes.append({"id": region, "level": "region"})
        for h in range(1, hubs_per_region + 1):
            hub = f"{region}-hub-{h}"
            nodes.append({"id": hub, "level": "hub", "parent": region})
            for n in range(1, nodes_per_hub + 1):
                node = f"{hub}-node-{n}"
                nodes.append({"id": node, "level": "node", "parent": hub})
                for _ in range(devices_per_node):
                    index = len(devices) + 1
                    device = f"cpe-{index:05d}"
                    services = ["internet", "tv"] if rng.random() < 0.6 else ["internet"]
                    devices.append({"id": device, "node": node, "services": services})
                    device_node[device] = node
                    language = "de" if rng.random() < 0.6 else "en"
                    first = rng.choice(FIRST_NAMES[language])
                    last = rng.choice(LAST_NAMES[language])
                    customers.append(
                        {
                            "id": f"c-{index:05d}",
                            "name": f"{first} {last}",
                            "phone": f"+49151{index:08d}",
                            "email": f"customer{index}@example.com",
                            "language": language,
                            "timezone": "Europe/Berlin" if language == "de" else "Europe/London",
                            "channels": ["sms", "email"] if rng.random() < 0.7 else ["email"],
                            "devices": [device],
                        }
                    )
    return SimulatedNetwork(
        inventory={"nodes": nodes, "devices": devices, "customers": customers},
        device_node=device_node,
    )


async def stream_heartbeats(
    *,
    producer: AIOKafkaProducer,
    topic: str,
    network: SimulatedNetwork,
    fault: Fault,
    stop: asyncio.Event,
    interval: float = 2.0,
    seed: int = 11,
) -> None:
    """Publish every device's `cpe.online` every `interval` seconds until `stop` is set."""
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    started = time.monotonic()
    faulty = {
        device
        for device, node in network.device_node.items()
        if node == fault.node and rng.random() < fault.down_fraction
    }
    while not stop.is_set():
        elapsed = time.monotonic() - started
        in_fault = fault.start_after <= elapsed < fault.start_after + fault.duration
        ts = int(time.time() * 1000)
        for device, node in network.device_node.items():
            online = not (in_fault and device in faulty)
            payload = {"ts": ts, "device_id": device, "metric": "cpe.online", "value": online}
            await producer.send(topic, orjson.dumps(payload), key=node.encode())
        await producer.flush()
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
