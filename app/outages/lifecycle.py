"""The outage lifecycle as pure values: states, the moves allowed between them, transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class OutageState(StrEnum):
    SUSPECTED = "suspected"
    OPEN = "open"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"

    @property
    def is_closed(self) -> bool:
        return self in _CLOSED

    @property
    def customers_told(self) -> bool:
        """Whether customers have heard of an outage in this state."""
        return self in _TOLD


_CLOSED = frozenset({OutageState.RESOLVED, OutageState.CANCELLED})
_TOLD = frozenset({OutageState.OPEN, OutageState.IDENTIFIED, OutageState.MONITORING})

ALLOWED: dict[OutageState | None, frozenset[OutageState]] = {
    None: frozenset({OutageState.SUSPECTED, OutageState.OPEN}),
    OutageState.SUSPECTED: frozenset({OutageState.OPEN, OutageState.CANCELLED}),
    OutageState.OPEN: frozenset(
        {OutageState.IDENTIFIED, OutageState.MONITORING, OutageState.RESOLVED}
    ),
    OutageState.IDENTIFIED: frozenset({OutageState.MONITORING, OutageState.RESOLVED}),
    OutageState.MONITORING: frozenset({OutageState.IDENTIFIED, OutageState.RESOLVED}),
    OutageState.RESOLVED: frozenset(),
    OutageState.CANCELLED: frozenset(),
}


def can_move(current: OutageState | None, target: OutageState) -> bool:
    """Tell whether an outage in `current` (None: no outage yet) may move to `target`."""
    return target in ALLOWED[current]


# The timestamp column stamped when an outage enters each state.
STAMP_COLUMN: dict[OutageState, str] = {
    OutageState.SUSPECTED: "suspected_at",
    OutageState.OPEN: "opened_at",
    OutageState.IDENTIFIED: "identified_at",
    OutageState.MONITORING: "monitoring_at",
    OutageState.RESOLVED: "resolved_at",
    OutageState.CANCELLED: "cancelled_at",
}


@dataclass(frozen=True, slots=True)
class Transition:
    """The engine's verdict that a rule's outage on one scope moves to `to_state` at `at`.

    `at` is event time (the engine's watermark), so replaying the same telemetry yields the
    same transitions with the same times; persistence relies on that to stay idempotent.
    `started_at` is when the condition first held.
    """

    rule_id: int
    rule_version: int
    rule_name: str
    scope_level: str
    scope_id: str
    to_state: OutageState
    at: datetime
    started_at: datetime
    severity: str
    services: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)
    parent_scope_id: str | None = None
    is_parent: bool = False

    @property
    def scope_key(self) -> str:
        return scope_key(self.rule_id, self.scope_level, self.scope_id)

    @property
    def parent_key(self) -> str | None:
        """The scope key of the parent outage this one attaches to, if any."""
        if self.parent_scope_id is None:
            return None
        return scope_key(self.rule_id, PARENT_LEVEL_NAME[self.scope_level], self.parent_scope_id)


@dataclass(frozen=True, slots=True)
class ActiveOutage:
    """An outage already persisted and not closed, used to seed the engine after a restart."""

    rule_id: int
    scope_level: str
    scope_id: str
    state: OutageState
    started_at: float
    suspected_at: float | None
    devices_at_open: int = 0
    parent_scope_id: str | None = None


# Epoch seconds of the first contact of a `contacts_spike` window, in a transition's details.
FIRST_CONTACT_DETAIL = "first_contact_ts"

PARENT_LEVEL_NAME = {"device": "node", "node": "hub", "hub": "region"}


def scope_key(rule_id: int, scope_level: str, scope_id: str) -> str:
    """The key that is unique among a rule's outages that are not closed."""
    return f"{rule_id}:{scope_level}:{scope_id}"
