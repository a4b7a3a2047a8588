"""Places and their levels: where each device sits, what is above each place, who is where."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ScopeLevel(StrEnum):
    DEVICE = "device"
    NODE = "node"
    HUB = "hub"
    REGION = "region"


# The level above each level, for correlation: node outages roll up into a hub outage.
PARENT_LEVEL: dict[ScopeLevel, ScopeLevel] = {
    ScopeLevel.DEVICE: ScopeLevel.NODE,
    ScopeLevel.NODE: ScopeLevel.HUB,
    ScopeLevel.HUB: ScopeLevel.REGION,
}


class Located(Protocol):
    """What a reading tells of where it comes from: its device and, optionally, labels."""

    @property
    def device_id(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str] | None: ...


@dataclass(frozen=True, slots=True)
class Topology:
    """Where each device sits (device -> node, place -> parent) and where customers are."""

    device_node: Mapping[str, str] = field(default_factory=dict)
    parent: Mapping[str, str] = field(default_factory=dict)
    customer_nodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    phone_customer: Mapping[str, str] = field(default_factory=dict)

    def scope_of(self, event: Located, level: ScopeLevel) -> str | None:
        """Return the id of the `level` scope the event belongs to, or None when unknown.

        Devices missing from the inventory fall back to their `labels` (`node`, `hub`,
        `region`), as the telemetry contract allows.
        """
        if level is ScopeLevel.DEVICE:
            return event.device_id
        node = self.device_node.get(event.device_id)
        if node is None:
            return event.labels.get(level.value) if event.labels else None
        return self.lift(node, ScopeLevel.NODE, level)

    def lift(self, place: str, level: ScopeLevel, target: ScopeLevel) -> str | None:
        """Return the ancestor of `place` (at `level`) that sits at `target` level."""
        order = (ScopeLevel.DEVICE, ScopeLevel.NODE, ScopeLevel.HUB, ScopeLevel.REGION)
        steps = order.index(target) - order.index(level)
        if steps < 0:
            return None
        current: str | None = place
        for _ in range(steps):
            if current is None:
                return None
            current = (
                self.device_node.get(current)
                if level is ScopeLevel.DEVICE and current == place
                else self.parent.get(current)
            )
        return current

    def chain(self, place: str) -> list[str]:
        """Return `place` and every place above it."""
        places = [place]
        current = self.device_node.get(place) or self.parent.get(place)
        while current is not None and len(places) < 8:
            places.append(current)
            current = self.parent.get(current)
        return places
