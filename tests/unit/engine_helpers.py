"""Small builders shared by the engine's unit tests."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from app.detection.spec import RuleSpec
from app.detection.telemetry import Telemetry
from app.domain.topology import Topology
from app.outages.lifecycle import OutageState, Transition
from app.rules.schemas import RuleDefinition, to_spec

T0 = 1_700_000_000.0
_RULES: TypeAdapter[Any] = TypeAdapter(RuleDefinition)


def make_spec(rule_id: int = 1, **fields: Any) -> RuleSpec:
    return to_spec(rule_id, 1, _RULES.validate_python(fields))


def network(hubs: int = 1, nodes_per_hub: int = 3, per_node: int = 20) -> Topology:
    """region r > hubs h0.. > nodes h0-n0.. > devices h0-n0-d0..; one customer per device."""
    device_node: dict[str, str] = {}
    parent: dict[str, str] = {}
    customer_nodes: dict[str, tuple[str, ...]] = {}
    for h in range(hubs):
        parent[f"h{h}"] = "r"
        for n in range(nodes_per_hub):
            node = f"h{h}-n{n}"
            parent[node] = f"h{h}"
            for d in range(per_node):
                device = f"{node}-d{d}"
                device_node[device] = node
                customer_nodes[f"c-{device}"] = (node,)
    return Topology(device_node=device_node, parent=parent, customer_nodes=customer_nodes)


def node_readings(
    ts: float, node: str, down: int, metric: str = "cpe.online", per_node: int = 20
) -> list[Telemetry]:
    return [
        Telemetry(ts, f"{node}-d{d}", metric, 0.0 if d < down else 1.0) for d in range(per_node)
    ]


def moves(transitions: list[Transition]) -> list[tuple[str, str, OutageState]]:
    return [(t.scope_level, t.scope_id, t.to_state) for t in transitions]
