"""The detection engine: telemetry, contacts and the time in, outage transitions out. No I/O.

Time is event time. The engine keeps a watermark (the newest event time it has seen, or a
later `now` the caller passes when the network has gone quiet) and evaluates conditions at
that watermark, so replaying the same input gives the same transitions at the same times.
Events older than the watermark minus the allowed lateness are counted in `late` and not
applied; events on a scope under maintenance are counted in `suppressed`.

Correlation: when `correlate_min_children` scopes under one parent (nodes of a hub, hubs of a
region) have an outage of the same rule, the engine opens one outage on the parent and
attaches the children to it; an outage under an already open parent attaches at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from app.detection.signals import AbsenceSignal, Signal, Verdict, new_signal
from app.detection.spec import RuleSpec
from app.detection.telemetry import Telemetry
from app.domain.contacts import Contact
from app.domain.maintenance import MaintenanceWindow
from app.domain.topology import PARENT_LEVEL, ScopeLevel, Topology
from app.outages.lifecycle import ActiveOutage, OutageState, Transition


class Phase(Enum):
    IDLE = 0
    PENDING = 1  # condition holds, `for` not yet over
    SUSPECTED = 2  # outage exists, inside `confirm_after`; nobody told
    OPEN = 3  # customers told


ACTIVE_PHASES = (Phase.SUSPECTED, Phase.OPEN)


@dataclass(slots=True)
class ScopeState:
    """What one rule knows about one scope: its signal and where its outage stands."""

    signal: Signal
    phase: Phase = Phase.IDLE
    since: float = 0.0
    suspected_at: float = 0.0
    parent: str | None = None
    warm_devices: int = 0  # after a restart: devices to see again before a clear counts
    warm_until: float = -1.0
    held: bool = False  # under maintenance at its last evaluation
    details: dict[str, float | int] = field(default_factory=dict)


def _needs_evaluation(state: ScopeState) -> bool:
    """Whether a scope must be evaluated next round even if no observation changes it: its
    lifecycle or its signal runs on time, it waits out a warm-up, or maintenance held it."""
    return (
        state.phase in (Phase.PENDING, Phase.SUSPECTED)
        or state.signal.needs_timer
        or state.warm_devices > 0
        or state.held
    )


@dataclass(slots=True)
class ParentState:
    """A parent scope's children with outages, and the parent outage once it exists."""

    children: set[str] = field(default_factory=set)
    phase: Phase = Phase.IDLE
    since: float = 0.0


# What the hot path needs of one scope: its signal's `observe` and the scope's key in `dirty`.
_Entry = tuple[Callable[[str, float, float, str], bool], tuple[int, str]]


@dataclass(slots=True)
class _RuleRuntime:
    spec: RuleSpec
    scopes: dict[str, ScopeState] = field(default_factory=dict)
    parents: dict[str, ParentState] = field(default_factory=dict)
    # scope -> _Entry, built on a scope's first reading. Valid for the runtime's life: a scope's
    # state is never removed from `scopes` nor given another signal (`replace_rules` resets a
    # signal only when it builds a new runtime).
    entries: dict[str, _Entry] = field(default_factory=dict)

    def entry(self, scope: str) -> _Entry:
        """Return the hot path's entry for `scope`, creating its state if it has none."""
        state = self.scopes.get(scope)
        if state is None:
            state = self.scopes[scope] = ScopeState(new_signal(self.spec.kind))
        entry = self.entries[scope] = (state.signal.observe, (self.spec.id, scope))
        return entry


# One rule fed by one metric, unpacked per reading: the runtime, whether the metric is the
# rule's clear metric, its label filter, its match filter (empty for a clear metric: any
# reading of it clears) and the device -> scope cache of its scope level.
_Route = tuple[
    _RuleRuntime, bool, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], dict[str, str]
]


@dataclass(slots=True)
class _Change:
    """The states one scope entered in one evaluation round."""

    runtime: _RuleRuntime
    scope: str
    state: ScopeState
    entered: list[OutageState]
    parent_id: str | None = None


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class DetectionEngine:
    """Evaluate every rule per scope and say when outages start, confirm, attach and end."""

    def __init__(
        self,
        rules: Iterable[RuleSpec],
        topology: Topology,
        active: Iterable[ActiveOutage] = (),
        *,
        allowed_lateness: float = 120.0,
        correlate_min_children: int = 2,
        warmup_seconds: float = 300.0,
    ) -> None:
        self.topology = topology
        # device -> scope id, per scope level, for devices in the inventory (the hot path's
        # one dict lookup instead of a walk up the topology); cleared with the topology.
        self._scopes: dict[ScopeLevel, dict[str, str]] = {level: {} for level in ScopeLevel}
        self.watermark = 0.0
        self.allowed_lateness = allowed_lateness
        self.correlate_min_children = correlate_min_children
        self.warmup_seconds = warmup_seconds
        self.unscoped = 0
        self.late = 0
        self.suppressed = 0
        self._rules: dict[int, _RuleRuntime] = {}
        self._by_metric: dict[str, list[_Route]] = {}
        self._contact_rules: list[_RuleRuntime] = []
        self._timed: set[tuple[int, str]] = set()
        self._maintenance: dict[str, list[tuple[float, float]]] = {}
        self.replace_rules(rules)
        self._seed(active)

    # -- configuration -------------------------------------------------------------------

    @property
    def rules(self) -> list[RuleSpec]:
        return [runtime.spec for runtime in self._rules.values()]

    def replace_rules(self, rules: Iterable[RuleSpec]) -> None:
        """Swap in a new rule set; a rule whose kind, metric and scope stay keeps its state."""
        old = self._rules
        self._rules = {}
        for spec in rules:
            runtime = old.get(spec.id)
            if runtime is None or (runtime.spec.kind, runtime.spec.metric, runtime.spec.scope) != (
                spec.kind,
                spec.metric,
                spec.scope,
            ):
                kept = runtime.scopes if runtime is not None else {}
                runtime = _RuleRuntime(spec)
                # Outages already open stay known, so they can still clear.
                for scope, state in kept.items():
                    if state.phase in ACTIVE_PHASES:
                        state.signal = new_signal(spec.kind)
                        runtime.scopes[scope] = state
                        self._timed.add((spec.id, scope))
            elif runtime.spec != spec:
                # New thresholds judge the same observations: every scope is evaluated again.
                runtime.spec = spec
                self._timed.update((spec.id, scope) for scope in runtime.scopes)
            self._rules[spec.id] = runtime
        self._by_metric = {}
        self._contact_rules = []
        for runtime in self._rules.values():
            spec = runtime.spec
            if spec.kind == "contacts_spike":
                self._contact_rules.append(runtime)
                continue
            cache = self._scopes[spec.scope]
            self._by_metric.setdefault(spec.metric, []).append(
                (runtime, False, spec.labels, spec.match, cache)
            )
            if spec.clear_metric:
                self._by_metric.setdefault(spec.clear_metric, []).append(
                    (runtime, True, spec.labels, (), cache)
                )
        self._timed = {key for key in self._timed if key[0] in self._rules}

    def replace_topology(self, topology: Topology) -> None:
        self.topology = topology
        for cache in self._scopes.values():
            cache.clear()  # the routes hold these dicts

    def replace_maintenance(self, windows: Iterable[MaintenanceWindow]) -> None:
        """Set the maintenance windows; detection is suppressed on their scopes meanwhile."""
        table: dict[str, list[tuple[float, float]]] = {}
        for window in windows:
            table.setdefault(window.scope_id, []).append((window.start, window.end))
        self._maintenance = table

    def tracked_scopes(self) -> int:
        return sum(len(runtime.scopes) for runtime in self._rules.values())

    # -- input ---------------------------------------------------------------------------

    def feed(self, events: Iterable[Telemetry], now: float | None = None) -> list[Transition]:
        """Apply a batch of events, then evaluate at the watermark every scope they changed
        (a reading that leaves its device as it was changes nothing) and every timed one."""
        dirty: set[tuple[int, str]] = set()
        watermark = self.watermark
        horizon = watermark - self.allowed_lateness
        by_metric = self._by_metric
        maintenance = self._maintenance
        late = 0
        for event in events:
            ts = event.ts
            if ts < horizon:
                late += 1
                continue
            if ts > watermark:
                watermark = ts
            routes = by_metric.get(event.metric)
            if routes is None:
                continue
            device_id = event.device_id
            if maintenance and self._in_maintenance(device_id, ts):
                self.suppressed += 1
                continue
            for runtime, is_clear, labels, match, cache in routes:
                if labels and not _labels_match(event, labels):
                    continue
                if match and event.value != 0 and not _labels_match(event, match):
                    continue  # a 0 / false alarm event is a clear, whatever its labels
                scope = cache.get(device_id)
                if scope is None:
                    scope = self._scope_of(event, runtime.spec.scope, cache)
                    if scope is None:
                        continue
                entry = runtime.entries.get(scope)
                if entry is None:
                    entry = runtime.entry(scope)
                observe, key = entry
                if observe(device_id, ts, 0.0 if is_clear else event.value, event.metric):
                    dirty.add(key)
        self.late += late
        return self._finish(dirty, watermark, now)

    def _scope_of(self, event: Telemetry, level: ScopeLevel, cache: dict[str, str]) -> str | None:
        """Place a reading at `level`, caching the answer for devices in the inventory."""
        scope = self.topology.scope_of(event, level)
        if scope is None:
            self.unscoped += 1
        elif event.device_id in self.topology.device_node:
            cache[event.device_id] = scope
        return scope

    def feed_contacts(
        self, contacts: Iterable[Contact], now: float | None = None
    ) -> list[Transition]:
        """Count customer contacts per scope for the `contacts_spike` rules."""
        dirty: set[tuple[int, str]] = set()
        watermark = self.watermark
        horizon = watermark - self.allowed_lateness
        topology = self.topology
        for contact in contacts:
            if contact.ts < horizon:
                self.late += 1
                continue
            watermark = max(watermark, contact.ts)
            customer = contact.customer_id or topology.phone_customer.get(contact.phone or "")
            nodes = topology.customer_nodes.get(customer or "", ())
            if not nodes:
                self.unscoped += 1
                continue
            for runtime in self._contact_rules:
                spec = runtime.spec
                scopes = {topology.lift(node, ScopeLevel.NODE, spec.scope) for node in nodes}
                for scope in scopes:
                    if scope is None:
                        continue
                    state = runtime.scopes.get(scope)
                    if state is None:
                        state = runtime.scopes[scope] = ScopeState(new_signal(spec.kind))
                    state.signal.observe(customer or "", contact.ts, 1.0, "contact")
                    dirty.add((spec.id, scope))
        return self._finish(dirty, watermark, now)

    def advance(self, now: float) -> list[Transition]:
        """Move the watermark to `now` (when nothing arrives) and run the pending timers."""
        return self.feed((), now)

    # -- evaluation ----------------------------------------------------------------------

    def _finish(
        self, dirty: set[tuple[int, str]], watermark: float, now: float | None
    ) -> list[Transition]:
        if now is not None and now > watermark:
            watermark = now
        self.watermark = watermark
        changed: list[_Change] = []
        for rule_id, scope in sorted(dirty | self._timed):
            runtime = self._rules.get(rule_id)
            if runtime is None:
                continue
            state = runtime.scopes[scope]
            entered = self._step(runtime.spec, scope, state, watermark)
            if entered:
                changed.append(_Change(runtime, scope, state, entered))
            if _needs_evaluation(state):
                self._timed.add((rule_id, scope))
            else:
                self._timed.discard((rule_id, scope))
        return self._correlate(changed, watermark) if changed else []

    def _step(self, spec: RuleSpec, scope: str, state: ScopeState, now: float) -> list[OutageState]:
        """Advance one scope's lifecycle; return the states it entered, in order."""
        if self._maintenance:
            window_end = self._maintenance_end(scope, now)
            if window_end is not None:
                state.held = True  # evaluated again when the window ends
                if isinstance(state.signal, AbsenceSignal):
                    state.signal.grace_until = window_end
                if state.phase is Phase.PENDING:
                    state.phase = Phase.IDLE
                return []
            state.held = False
        verdict: Verdict = state.signal.verdict(spec, now)
        clear = verdict.clear and self._warm(state, verdict.devices, now)
        firing = verdict.firing
        entered: list[OutageState] = []
        if firing or state.phase is not Phase.IDLE:
            state.details = verdict.details
        if state.phase is Phase.IDLE:
            if not firing:
                return entered
            state.phase, state.since = Phase.PENDING, now
        if state.phase is Phase.PENDING:
            if not firing:
                state.phase = Phase.IDLE
                return entered
            if now - state.since < spec.for_seconds:
                return entered
            state.phase, state.suspected_at = Phase.SUSPECTED, now
            entered.append(OutageState.SUSPECTED)
        if state.phase is Phase.SUSPECTED:
            if clear:
                state.phase = Phase.IDLE
                entered.append(OutageState.CANCELLED)
            elif now - state.suspected_at >= spec.confirm_after_seconds:
                state.phase = Phase.OPEN
                entered.append(OutageState.OPEN)
            return entered
        if state.phase is Phase.OPEN and clear:
            state.phase = Phase.IDLE
            entered.append(OutageState.RESOLVED)
        return entered

    def _warm(self, state: ScopeState, seen: int, now: float) -> bool:
        """After a restart, wait to see the scope's devices again before believing a clear."""
        if not state.warm_devices:
            return True
        if state.warm_until < 0:
            state.warm_until = now + self.warmup_seconds
        if seen >= state.warm_devices or now >= state.warm_until:
            state.warm_devices = 0
            return True
        return False

    # -- correlation ---------------------------------------------------------------------

    def _parent_of(self, spec: RuleSpec, scope: str) -> str | None:
        level = PARENT_LEVEL.get(spec.scope)
        if level is None or self.correlate_min_children <= 0:
            return None
        return self.topology.lift(scope, spec.scope, level)

    def _correlate(self, changed: list[_Change], now: float) -> list[Transition]:
        """Turn one round's lifecycle changes into transitions, rolling children up.

        All of a round's changes are counted before anything is emitted, so children that go
        down together attach to their parent before any of them is told to customers.
        """
        touched: dict[tuple[int, str], tuple[_RuleRuntime, ParentState]] = {}
        for change in changed:
            parent_id = self._parent_of(change.runtime.spec, change.scope)
            if parent_id is None:
                continue
            parent = change.runtime.parents.setdefault(parent_id, ParentState())
            if change.state.phase in ACTIVE_PHASES:
                parent.children.add(change.scope)
            else:
                parent.children.discard(change.scope)
            touched[(change.runtime.spec.id, parent_id)] = (change.runtime, parent)
            change.parent_id = parent_id

        out: list[Transition] = []
        in_round = {(c.runtime.spec.id, c.scope) for c in changed}
        for (_rule_id, parent_id), (runtime, parent) in sorted(
            touched.items(), key=lambda item: item[0]
        ):
            children = [runtime.scopes[c] for c in sorted(parent.children)]
            any_open = any(child.phase is Phase.OPEN for child in children)
            spec = runtime.spec
            if parent.phase is Phase.IDLE and len(children) >= self.correlate_min_children:
                parent.since = min(child.since for child in children)
                parent.phase = Phase.SUSPECTED
                out.append(
                    self._parent_transition(spec, parent_id, parent, OutageState.SUSPECTED, now)
                )
                # Children out before this round are re-stated with their parent: that is
                # how persistence attaches them.
                for child_id in sorted(parent.children):
                    child = runtime.scopes[child_id]
                    child.parent = parent_id
                    if (spec.id, child_id) not in in_round:
                        restated = (
                            OutageState.OPEN if child.phase is Phase.OPEN else OutageState.SUSPECTED
                        )
                        out.append(self._transition(spec, child_id, child, restated, now))
            if parent.phase is Phase.SUSPECTED and any_open:
                parent.phase = Phase.OPEN
                out.append(self._parent_transition(spec, parent_id, parent, OutageState.OPEN, now))

        for change in changed:
            owner = change.runtime.parents.get(change.parent_id) if change.parent_id else None
            if owner is not None and owner.phase is not Phase.IDLE:
                change.state.parent = change.parent_id
            for to in change.entered:
                out.append(
                    self._transition(change.runtime.spec, change.scope, change.state, to, now)
                )
            if change.state.phase is Phase.IDLE:
                change.state.parent = None

        for (_rule_id, parent_id), (runtime, parent) in sorted(
            touched.items(), key=lambda item: item[0]
        ):
            if not parent.children:
                if parent.phase is not Phase.IDLE:
                    closing = (
                        OutageState.RESOLVED
                        if parent.phase is Phase.OPEN
                        else OutageState.CANCELLED
                    )
                    parent.phase = Phase.IDLE
                    out.append(
                        self._parent_transition(runtime.spec, parent_id, parent, closing, now)
                    )
                runtime.parents.pop(parent_id, None)
        return out

    # -- seeding -------------------------------------------------------------------------

    def reconcile(self, active: Iterable[ActiveOutage]) -> None:
        """Make the engine's open outages match the persisted ones.

        Called after a rebalance: another detector may have opened, attached or closed
        outages on the partitions this one now owns. Scopes the database says are out become
        so here (waiting to see their devices again before a clear counts); scopes this
        engine thought out but the database has closed go back to idle. Device readings are
        kept: they are facts, whoever holds the partition.
        """
        persisted = list(active)
        self.forget_closed(persisted)
        self._seed(persisted)

    def forget_closed(self, active: Iterable[ActiveOutage]) -> None:
        """Put back to idle every scope whose outage is no longer open in the database (the NOC
        resolved it), so that a condition that still holds opens a new outage."""
        keys = {(o.rule_id, o.scope_level, o.scope_id) for o in active}
        for rule_id, runtime in self._rules.items():
            level = runtime.spec.scope.value
            for scope, state in runtime.scopes.items():
                if state.phase in ACTIVE_PHASES and (rule_id, level, scope) not in keys:
                    state.phase, state.parent = Phase.IDLE, None
                    self._timed.add((rule_id, scope))  # a condition that holds opens anew
            for parent_id, parent in list(runtime.parents.items()):
                parent_level = PARENT_LEVEL[runtime.spec.scope].value
                if parent.phase in ACTIVE_PHASES and (rule_id, parent_level, parent_id) not in keys:
                    del runtime.parents[parent_id]
            for parent in runtime.parents.values():
                parent.children = {
                    c for c in parent.children if runtime.scopes[c].phase in ACTIVE_PHASES
                }

    def _seed(self, active: Iterable[ActiveOutage]) -> None:
        for outage in active:
            runtime = self._rules.get(outage.rule_id)
            if runtime is None:
                continue
            phase = Phase.SUSPECTED if outage.state is OutageState.SUSPECTED else Phase.OPEN
            if outage.scope_level != runtime.spec.scope.value:
                parent = runtime.parents.setdefault(outage.scope_id, ParentState())
                parent.phase, parent.since = phase, outage.started_at
                continue
            state = runtime.scopes.get(outage.scope_id)
            if state is None:
                state = runtime.scopes[outage.scope_id] = ScopeState(new_signal(runtime.spec.kind))
            if state.phase in ACTIVE_PHASES and state.parent == outage.parent_scope_id:
                continue  # this engine already follows the outage
            if state.phase not in ACTIVE_PHASES:
                state.warm_devices = outage.devices_at_open
                state.warm_until = -1.0
            state.phase = phase
            state.since = outage.started_at
            state.suspected_at = outage.suspected_at or outage.started_at
            state.parent = outage.parent_scope_id
            if outage.parent_scope_id is not None:
                runtime.parents.setdefault(outage.parent_scope_id, ParentState()).children.add(
                    outage.scope_id
                )
            self._timed.add((outage.rule_id, outage.scope_id))

    # -- maintenance ---------------------------------------------------------------------

    def _in_maintenance(self, device_id: str, ts: float) -> bool:
        for place in self.topology.chain(device_id):
            for start, end in self._maintenance.get(place, ()):
                if start <= ts < end:
                    return True
        return False

    def _maintenance_end(self, scope: str, now: float) -> float | None:
        """Return when the maintenance covering `scope` at `now` ends, or None."""
        for place in self.topology.chain(scope):
            for start, end in self._maintenance.get(place, ()):
                if start <= now < end:
                    return end
        return None

    # -- output --------------------------------------------------------------------------

    @staticmethod
    def _transition(
        spec: RuleSpec, scope: str, state: ScopeState, to: OutageState, now: float
    ) -> Transition:
        return Transition(
            rule_id=spec.id,
            rule_version=spec.version,
            rule_name=spec.name,
            scope_level=spec.scope.value,
            scope_id=scope,
            to_state=to,
            at=_utc(now),
            started_at=_utc(state.since),
            severity=spec.severity.value,
            services=spec.services,
            details=dict(state.details),
            parent_scope_id=state.parent,
        )

    @staticmethod
    def _parent_transition(
        spec: RuleSpec, parent_id: str, parent: ParentState, to: OutageState, now: float
    ) -> Transition:
        level = PARENT_LEVEL[spec.scope]
        return Transition(
            rule_id=spec.id,
            rule_version=spec.version,
            rule_name=spec.name,
            scope_level=level.value,
            scope_id=parent_id,
            to_state=to,
            at=_utc(now),
            started_at=_utc(parent.since),
            severity=spec.severity.value,
            services=spec.services,
            details={"children": len(parent.children)},
            is_parent=True,
        )


def _labels_match(event: Telemetry, wanted: tuple[tuple[str, str], ...]) -> bool:
    labels = event.labels or {}
    return all(labels.get(key) == value for key, value in wanted)
