"""A rule as the engine runs it: plain values, with the engine's own types (severity,
aggregates, comparisons); the rules API's schemas build on these."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain.topology import ScopeLevel


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Aggregate(StrEnum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    RATE = "rate"


class Comparison(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    @property
    def below(self) -> bool:
        return self in (Comparison.LT, Comparison.LE)

    def holds(self, left: float, right: float) -> bool:
        if self is Comparison.LT:
            return left < right
        if self is Comparison.LE:
            return left <= right
        if self is Comparison.GT:
            return left > right
        return left >= right


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A stored rule version as the engine runs it: plain values, seconds as floats.

    Fields a kind does not use keep their defaults.
    """

    id: int
    version: int
    name: str
    kind: str
    scope: ScopeLevel
    severity: Severity
    services: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    confirm_after_seconds: float
    for_seconds: float
    metric: str = ""
    threshold: float = 0.0
    clear_threshold: float = 0.0
    min_devices: int = 1
    silent_after_seconds: float = 0.0
    match: tuple[tuple[str, str], ...] = ()
    clear_metric: str = ""
    aggregate: Aggregate = Aggregate.AVG
    op: Comparison = Comparison.GT
    window_seconds: float = 0.0
    min_samples: int = 1
    factor: float = 0.0
