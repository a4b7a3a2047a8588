"""What each rule kind remembers about one scope, and its verdict at a given time.

A signal takes observations (`observe`) and answers `verdict(now)` with whether the rule's
condition holds (`firing`), whether the clear condition holds (`clear`), and figures for the
outage's details. Firing and clear are separate so every kind has hysteresis.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from app.detection.spec import Aggregate, RuleSpec
from app.outages.lifecycle import FIRST_CONTACT_DETAIL


class Verdict(NamedTuple):
    """A signal's reading of its scope now. A named tuple: one is built per scope a batch
    touches, on the detector's hot path, and a frozen dataclass costs twice as much."""

    firing: bool
    clear: bool
    devices: int
    details: dict[str, float | int]


class Signal(Protocol):
    def observe(self, device_id: str, ts: float, value: float, metric: str) -> bool:
        """Record one observation; return whether the verdict may have changed (a scope
        whose observations all return False is not evaluated again for them)."""

    def verdict(self, spec: RuleSpec, now: float) -> Verdict: ...

    @property
    def needs_timer(self) -> bool:
        """Whether the verdict can change with time alone, with no new observation."""


@dataclass(slots=True)
class RatioSignal:
    """`ratio_down`: each device's latest reading; 0 / false is down."""

    devices: dict[str, tuple[float, bool]] = field(default_factory=dict)
    down: int = 0

    def observe(self, device_id: str, ts: float, value: float, metric: str) -> bool:
        is_down = value == 0
        reading = (ts, is_down)
        previous = self.devices.get(device_id)
        if previous is None:
            self.devices[device_id] = reading
            self.down += is_down
            return True
        # Newest reading wins; at equal times, down wins (so order never matters).
        if previous >= reading:
            return False
        self.devices[device_id] = reading
        if previous[1] is is_down:
            return False  # the same device, still up (or still down): the verdict stands
        self.down += is_down - previous[1]
        return True

    def verdict(self, spec: RuleSpec, now: float) -> Verdict:
        seen = len(self.devices)
        ratio = self.down / seen if seen else 0.0
        return Verdict(
            firing=seen >= spec.min_devices and ratio > spec.threshold,
            clear=seen >= spec.min_devices and ratio < spec.clear_threshold,
            devices=seen,
            details={"down": self.down, "devices": seen, "ratio": round(ratio, 4)},
        )

    @property
    def needs_timer(self) -> bool:
        return False


@dataclass(slots=True)
class AbsenceSignal:
    """`absence`: a device silent for `missed_intervals` x `expected_interval` counts as down.

    Deadlines are kept in arrival order in a deque (amortised O(1) per event); an entry whose
    device has reported since is stale and skipped when it comes due.
    """

    last_seen: dict[str, float] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    deadlines: deque[tuple[float, str]] = field(default_factory=deque)
    grace_until: float = 0.0

    def observe(self, device_id: str, ts: float, value: float, metric: str) -> bool:
        previous = self.last_seen.get(device_id)
        if previous is not None and previous >= ts:
            return False
        self.last_seen[device_id] = ts
        self.silent.discard(device_id)
        self.deadlines.append((ts, device_id))
        return True

    def verdict(self, spec: RuleSpec, now: float) -> Verdict:
        timeout = spec.silent_after_seconds
        horizon = now - timeout
        deadlines, last_seen = self.deadlines, self.last_seen
        if now >= self.grace_until + timeout:
            while deadlines and deadlines[0][0] <= horizon:
                ts, device = deadlines.popleft()
                if last_seen.get(device) == ts:
                    self.silent.add(device)
        seen = len(last_seen)
        silent = len(self.silent)
        ratio = silent / seen if seen else 0.0
        return Verdict(
            firing=seen >= spec.min_devices and ratio > spec.threshold,
            clear=seen >= spec.min_devices and ratio < spec.clear_threshold,
            devices=seen,
            details={"silent": silent, "devices": seen, "ratio": round(ratio, 4)},
        )

    @property
    def needs_timer(self) -> bool:
        return bool(self.deadlines)


@dataclass(slots=True)
class ThresholdSignal:
    """`threshold`: samples in an event-time sliding window, aggregated at each verdict."""

    samples: list[tuple[float, float]] = field(default_factory=list)

    def observe(self, device_id: str, ts: float, value: float, metric: str) -> bool:
        if not self.samples or ts >= self.samples[-1][0]:
            self.samples.append((ts, value))
        else:
            insort(self.samples, (ts, value))  # a late event, inside the allowed lateness
        return True

    def verdict(self, spec: RuleSpec, now: float) -> Verdict:
        start = now - spec.window_seconds
        samples = self.samples
        cut = 0
        while cut < len(samples) and samples[cut][0] <= start:
            cut += 1
        if cut:
            del samples[:cut]
        count = len(samples)
        if count < spec.min_samples:
            # Too little data to say anything: neither open nor close on it.
            return Verdict(False, False, count, {"samples": count})
        value = aggregate(spec.aggregate, [v for _, v in samples], spec.window_seconds)
        firing = spec.op.holds(value, spec.threshold)
        clear = value >= spec.clear_threshold if spec.op.below else value <= spec.clear_threshold
        if spec.clear_threshold == spec.threshold:
            clear = not firing
        return Verdict(firing, clear, count, {"value": round(value, 4), "samples": count})

    @property
    def needs_timer(self) -> bool:
        return bool(self.samples)


def aggregate(kind: Aggregate, values: list[float], window_seconds: float) -> float:
    """Aggregate a non-empty list of values; `rate` is samples per second over the window."""
    if kind is Aggregate.COUNT:
        return float(len(values))
    if kind is Aggregate.SUM:
        return math.fsum(values)
    if kind is Aggregate.AVG:
        return math.fsum(values) / len(values)
    if kind is Aggregate.MIN:
        return min(values)
    if kind is Aggregate.MAX:
        return max(values)
    if kind is Aggregate.RATE:
        return len(values) / window_seconds
    quantile = {Aggregate.P50: 0.50, Aggregate.P95: 0.95, Aggregate.P99: 0.99}[kind]
    ordered = sorted(values)
    # Nearest-rank percentile: always a value that was observed.
    rank = max(1, math.ceil(quantile * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class AlarmSignal:
    """`alarm`: the sources (devices) with a raised alarm; a 0 / false value lowers one.

    The engine turns the rule's `clear_metric` events into 0 readings before they get here.
    """

    raised: dict[str, float] = field(default_factory=dict)

    def observe(self, device_id: str, ts: float, value: float, metric: str) -> bool:
        raise_it = value != 0
        current = self.raised.get(device_id)
        if raise_it:
            if current is not None and current >= ts:
                return False
            self.raised[device_id] = ts
            return True
        if current is None or current > ts:
            return False
        del self.raised[device_id]
        return True

    def verdict(self, spec: RuleSpec, now: float) -> Verdict:
        count = len(self.raised)
        return Verdict(
            firing=count >= spec.min_devices,
            clear=count == 0,
            devices=count,
            details={"alarms": count},
        )

    @property
    def needs_timer(self) -> bool:
        return False


@dataclass(slots=True)
class ContactsSignal:
    """`contacts_spike`: contacts in the last window against the scope's usual rate.

    The baseline is the mean number of contacts per window over the `BASELINE_WINDOWS`
    windows before the current one, with a floor so a quiet scope still needs
    `min_contacts` to fire.
    """

    BASELINE_WINDOWS = 12
    times: deque[float] = field(default_factory=deque)

    def observe(self, device_id: str, ts: float, value: float, metric: str) -> bool:
        if not self.times or ts >= self.times[-1]:
            self.times.append(ts)
        else:
            ordered = sorted([*self.times, ts])
            self.times = deque(ordered)
        return True

    def verdict(self, spec: RuleSpec, now: float) -> Verdict:
        window = spec.window_seconds
        oldest = now - window * (self.BASELINE_WINDOWS + 1)
        times = self.times
        while times and times[0] <= oldest:
            times.popleft()
        in_window = [t for t in times if t > now - window]
        current = len(in_window)
        baseline = (len(times) - current) / self.BASELINE_WINDOWS
        expected = max(baseline, 1.0 / self.BASELINE_WINDOWS)
        firing = current >= spec.min_devices and current > spec.factor * expected
        clear = current < spec.min_devices and current <= spec.factor * expected
        details: dict[str, float | int] = {"contacts": current, "baseline": round(baseline, 3)}
        if in_window:
            # The spike's first call is the outage's first customer contact (its lead time).
            details[FIRST_CONTACT_DETAIL] = in_window[0]
        return Verdict(firing, clear, current, details)

    @property
    def needs_timer(self) -> bool:
        return bool(self.times)


def new_signal(kind: str) -> Signal:
    """Return an empty signal for a rule kind."""
    return _SIGNALS[kind]()


_SIGNALS: dict[str, type[Signal]] = {
    "ratio_down": RatioSignal,
    "absence": AbsenceSignal,
    "threshold": ThresholdSignal,
    "alarm": AlarmSignal,
    "contacts_spike": ContactsSignal,
}
