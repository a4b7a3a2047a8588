"""The messages on the `outage-events` topic (key = outage id), version 1."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from app.outages.lifecycle import OutageState


@dataclass(frozen=True, slots=True)
class OutageEvent:
    """An outage entered `state` at `at`. Consumers must treat repeats as harmless.

    `parent_id` names the correlated parent outage this one is attached to: its customers
    hear about the parent, once, instead of about each child.
    """

    outage_id: str
    state: OutageState
    previous_state: OutageState | None
    at: datetime
    rule_id: int
    rule_name: str
    scope_level: str
    scope_id: str
    severity: str
    services: tuple[str, ...]
    parent_id: str | None = None
    is_parent: bool = False
    update_sequence: int = 0  # > 0: the NOC's (or the promise keeper's) n-th update

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "outage_id": self.outage_id,
            "state": self.state.value,
            "previous_state": self.previous_state.value if self.previous_state else None,
            "at": self.at.isoformat(),
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "scope_level": self.scope_level,
            "scope_id": self.scope_id,
            "severity": self.severity,
            "services": list(self.services),
            "parent_id": self.parent_id,
            "is_parent": self.is_parent,
            "update_sequence": self.update_sequence,
        }

    @classmethod
    def from_json(cls, raw: bytes) -> OutageEvent:
        """Parse an event; raise ValueError (or KeyError/TypeError) when it is not one."""
        return cls.from_dict(orjson.loads(raw))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutageEvent:
        """Build an event from its JSON form; raise ValueError, KeyError or TypeError if bad."""
        if data.get("v") != 1:
            raise ValueError(f"unsupported outage event version {data.get('v')!r}")
        previous = data.get("previous_state")
        return cls(
            outage_id=str(data["outage_id"]),
            state=OutageState(data["state"]),
            previous_state=OutageState(previous) if previous else None,
            at=datetime.fromisoformat(data["at"]),
            rule_id=int(data["rule_id"]),
            rule_name=str(data["rule_name"]),
            scope_level=str(data["scope_level"]),
            scope_id=str(data["scope_id"]),
            severity=str(data["severity"]),
            services=tuple(str(s) for s in data["services"]),
            parent_id=str(data["parent_id"]) if data.get("parent_id") else None,
            is_parent=bool(data.get("is_parent", False)),
            update_sequence=int(data.get("update_sequence", 0)),
        )
