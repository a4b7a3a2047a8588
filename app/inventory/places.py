"""The places outages and maintenance windows name, with what customers call them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.places import place_name
from app.inventory.models import Device, TopologyNode


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    name: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    def called(self, language: str) -> str:
        """What a reader of `language` calls this place (never its raw id)."""
        return place_name(self.id, language, self.names, self.name)


async def places_of(
    *, session: AsyncSession, scopes: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Place]:
    """The place each (level, id) scope names; a device scope names the node it sits on.

    A scope not in the inventory (placed by telemetry labels) is a place with no names."""
    wanted = set(scopes)
    devices = sorted(scope_id for level, scope_id in wanted if level == "device")
    device_node: dict[str, str] = {}
    if devices:
        device_node = {
            d: n
            for d, n in await session.execute(
                select(Device.id, Device.node_id).where(Device.id.in_(devices))
            )
        }
    ids = {device_node.get(s, s) if lvl == "device" else s for lvl, s in wanted}
    rows = {
        row.id: row
        for row in await session.scalars(select(TopologyNode).where(TopologyNode.id.in_(ids)))
    }
    found: dict[tuple[str, str], Place] = {}
    for level, scope_id in wanted:
        place_id = device_node.get(scope_id, scope_id) if level == "device" else scope_id
        row = rows.get(place_id)
        found[(level, scope_id)] = (
            Place(place_id, row.name, dict(row.names or {})) if row else Place(place_id)
        )
    return found
