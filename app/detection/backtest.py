"""Replay recorded telemetry through the engine: which outages would a rule have opened?

Pure: events in, a summary of the outages out. Events are fed in event-time order, in
batches of `batch_seconds` of event time, and the watermark is advanced between batches so
timers (`for`, `confirm_after`, absence) fire as they would have live.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from app.detection.decode import decode_contact, decode_telemetry_message
from app.detection.engine import DetectionEngine
from app.detection.exceptions import DecodeError
from app.detection.spec import RuleSpec
from app.detection.telemetry import Telemetry
from app.domain.contacts import Contact
from app.domain.topology import Topology
from app.outages.lifecycle import OutageState


@dataclass
class Recording:
    """Decoded telemetry and contacts of a time range, and what could not be decoded."""

    events: list[Telemetry] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    invalid: int = 0
    truncated: bool = False

    def add_telemetry(self, raw: bytes | None) -> None:
        """Decode one telemetry message into the recording; count it as invalid if it is not."""
        try:
            self.events.extend(decode_telemetry_message(raw))
        except DecodeError:
            self.invalid += 1

    def add_contact(self, raw: bytes | None) -> None:
        """Decode one contact message into the recording; count it as invalid if it is not."""
        try:
            self.contacts.append(decode_contact(raw))
        except DecodeError:
            self.invalid += 1


class RecordedTelemetry(Protocol):
    """Where recorded telemetry is read from (the Kafka topics, in `consumers/recorded.py`)."""

    async def read_range(self, start: datetime, end: datetime) -> Recording:
        """Return the telemetry and contacts recorded in [start, end).

        Raise `RecordingUnavailableError` when the recording cannot be reached.
        """
        ...


@dataclass(slots=True)
class SimulatedOutage:
    """One outage the replay opened (or only suspected)."""

    scope_level: str
    scope_id: str
    started_at: datetime
    suspected_at: datetime | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    final_state: OutageState = OutageState.SUSPECTED
    parent_scope_id: str | None = None
    is_parent: bool = False
    details: dict[str, float | int] = field(default_factory=dict)


@dataclass(slots=True)
class BacktestResult:
    events: int
    late: int
    unscoped: int
    outages: list[SimulatedOutage]


def replay(
    specs: list[RuleSpec],
    topology: Topology,
    events: Iterable[Telemetry],
    contacts: Iterable[Contact] = (),
    *,
    batch_seconds: float = 1.0,
    allowed_lateness: float = 120.0,
    correlate_min_children: int = 2,
) -> BacktestResult:
    """Replay events (any order; sorted here) and return what the rules would have done."""
    engine = DetectionEngine(
        specs,
        topology,
        allowed_lateness=allowed_lateness,
        correlate_min_children=correlate_min_children,
    )
    ordered = sorted(events, key=lambda e: e.ts)
    calls = sorted(contacts, key=lambda c: c.ts)
    outages: dict[tuple[str, str], SimulatedOutage] = {}
    finished: list[SimulatedOutage] = []
    index = call_index = 0
    transitions = []
    while index < len(ordered) or call_index < len(calls):
        next_ts = min(
            ordered[index].ts if index < len(ordered) else float("inf"),
            calls[call_index].ts if call_index < len(calls) else float("inf"),
        )
        end = next_ts + batch_seconds
        batch: list[Telemetry] = []
        while index < len(ordered) and ordered[index].ts < end:
            batch.append(ordered[index])
            index += 1
        call_batch: list[Contact] = []
        while call_index < len(calls) and calls[call_index].ts < end:
            call_batch.append(calls[call_index])
            call_index += 1
        transitions += engine.advance(next_ts)
        transitions += engine.feed(batch)
        if call_batch:
            transitions += engine.feed_contacts(call_batch)
    # Let the timers that were running at the end of the recording run out.
    # `for` and `confirm_after` are separate stages: each needs its own step of time.
    for stage in ("for_seconds", "confirm_after_seconds"):
        longest = max((getattr(s, stage) for s in specs), default=0.0)
        transitions += engine.advance(engine.watermark + longest + batch_seconds)
    for t in transitions:
        key = (t.scope_level, t.scope_id)
        outage = outages.get(key)
        if outage is None:
            outage = outages[key] = SimulatedOutage(t.scope_level, t.scope_id, t.started_at)
        outage.final_state = t.to_state
        outage.details = dict(t.details)
        outage.parent_scope_id = t.parent_scope_id or outage.parent_scope_id
        outage.is_parent = outage.is_parent or t.is_parent
        if t.to_state is OutageState.SUSPECTED and outage.suspected_at is None:
            outage.suspected_at = t.at
        elif t.to_state is OutageState.OPEN and outage.opened_at is None:
            outage.opened_at = t.at
        elif t.to_state.is_closed:
            outage.closed_at = t.at
            finished.append(outages.pop(key))
    return BacktestResult(
        events=len(ordered),
        late=engine.late,
        unscoped=engine.unscoped,
        outages=sorted([*finished, *outages.values()], key=lambda o: o.started_at),
    )
