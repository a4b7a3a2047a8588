"""The rule language as the API accepts it, and the plain spec the engine runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from app.detection.spec import Aggregate, Comparison, RuleSpec, Severity
from app.domain.topology import ScopeLevel
from app.durations import format_duration, parse_duration


def _to_timedelta(value: object) -> object:
    try:
        if isinstance(value, str):
            return parse_duration(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return timedelta(seconds=value)
    except OverflowError:
        raise ValueError("is too long a duration") from None
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str),
    Field(ge=timedelta(0)),
]


Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
Metric = Annotated[str, Field(min_length=1, max_length=128)]
Service = Annotated[str, Field(min_length=1, max_length=64)]


class RuleBase(BaseModel):
    """Fields every rule kind shares."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Name
    description: str | None = Field(default=None, max_length=2000)
    scope: ScopeLevel = ScopeLevel.NODE
    severity: Severity = Severity.MAJOR
    services: list[Service] = Field(default_factory=list, max_length=32)
    labels: dict[str, str] = Field(
        default_factory=dict, description="Only events whose labels match all of these count."
    )
    confirm_after: Duration = Field(
        default=timedelta(0),
        description="How long an outage stays suspected before customers hear.",
    )
    enabled: bool = True


class _DeviceRatio(RuleBase):
    """Shared by kinds that count the fraction of a scope's devices that are down."""

    metric: Metric
    threshold: float = Field(gt=0, lt=1, description="Fraction of devices down that opens.")
    clear_threshold: float = Field(ge=0, lt=1, description="Fraction below which it clears.")
    min_devices: int = Field(default=1, ge=1)
    for_: Duration = Field(default=timedelta(0), alias="for")

    @model_validator(mode="after")
    def _clear_below_threshold(self) -> Self:
        if self.clear_threshold >= self.threshold:
            raise ValueError(
                "clear_threshold must be below threshold, so an outage cannot flap open and shut"
            )
        return self


class RatioDownRule(_DeviceRatio):
    """Too large a fraction of a scope's devices report their metric as down (0 / false)."""

    kind: Literal["ratio_down"]


class AbsenceRule(_DeviceRatio):
    """Too many of a scope's devices have gone silent: no `metric` for N expected intervals."""

    kind: Literal["absence"]
    expected_interval: Duration = Field(gt=timedelta(0))
    missed_intervals: int = Field(default=3, ge=1, le=1000)


class AlarmRule(RuleBase):
    """A matching alarm event opens an outage at once; the matching clear event closes it."""

    kind: Literal["alarm"]
    metric: Metric
    match: dict[str, str] = Field(
        default_factory=dict, description="Labels the alarm event must carry."
    )
    clear_metric: Metric | None = Field(
        default=None,
        description="The metric whose event clears the alarm; a 0/false value of `metric` "
        "clears it too.",
    )
    min_devices: int = Field(default=1, ge=1, description="Alarmed sources needed to open.")
    for_: Duration = Field(default=timedelta(0), alias="for")


class ThresholdRule(RuleBase):
    """An aggregate of a metric over a sliding event-time window crosses a threshold."""

    kind: Literal["threshold"]
    metric: Metric
    aggregate: Aggregate
    window: Duration = Field(gt=timedelta(0), le=timedelta(days=1))
    op: Comparison
    threshold: float
    clear_threshold: float
    min_samples: int = Field(default=1, ge=1)
    for_: Duration = Field(default=timedelta(0), alias="for")

    @model_validator(mode="after")
    def _hysteresis_points_the_right_way(self) -> Self:
        if self.op.below and self.clear_threshold < self.threshold:
            raise ValueError(
                f"with op {self.op.value!r}, clear_threshold must be at or above threshold"
            )
        if not self.op.below and self.clear_threshold > self.threshold:
            raise ValueError(
                f"with op {self.op.value!r}, clear_threshold must be at or below threshold"
            )
        return self


class ContactsSpikeRule(RuleBase):
    """Customer contacts per scope rise above `factor` times the scope's usual rate."""

    kind: Literal["contacts_spike"]
    window: Duration = Field(gt=timedelta(0), le=timedelta(days=1))
    factor: float = Field(gt=1)
    min_contacts: int = Field(default=5, ge=1)
    for_: Duration = Field(default=timedelta(0), alias="for")


AnyRule = RatioDownRule | AbsenceRule | AlarmRule | ThresholdRule | ContactsSpikeRule
RuleDefinition = Annotated[AnyRule, Field(discriminator="kind")]


def rule_definition_json(rule: AnyRule) -> dict[str, Any]:
    """Return the definition as stored and shown: JSON types, `for` under its own name."""
    return rule.model_dump(mode="json", by_alias=True, exclude={"enabled"})


def to_spec(rule_id: int, version: int, rule: AnyRule) -> RuleSpec:
    """Turn a validated rule into the spec the engine runs."""
    common: dict[str, Any] = {
        "id": rule_id,
        "version": version,
        "name": rule.name,
        "kind": rule.kind,
        "scope": rule.scope,
        "severity": rule.severity,
        "services": tuple(rule.services),
        "labels": tuple(sorted(rule.labels.items())),
        "confirm_after_seconds": rule.confirm_after.total_seconds(),
        "for_seconds": rule.for_.total_seconds(),
    }
    if isinstance(rule, _DeviceRatio):
        common.update(
            metric=rule.metric,
            threshold=rule.threshold,
            clear_threshold=rule.clear_threshold,
            min_devices=rule.min_devices,
        )
        if isinstance(rule, AbsenceRule):
            silent = rule.expected_interval.total_seconds() * rule.missed_intervals
            common.update(silent_after_seconds=silent)
    elif isinstance(rule, AlarmRule):
        common.update(
            metric=rule.metric,
            match=tuple(sorted(rule.match.items())),
            clear_metric=rule.clear_metric or "",
            min_devices=rule.min_devices,
        )
    elif isinstance(rule, ThresholdRule):
        common.update(
            metric=rule.metric,
            aggregate=rule.aggregate,
            op=rule.op,
            threshold=rule.threshold,
            clear_threshold=rule.clear_threshold,
            window_seconds=rule.window.total_seconds(),
            min_samples=rule.min_samples,
        )
    else:
        common.update(
            window_seconds=rule.window.total_seconds(),
            factor=rule.factor,
            min_devices=rule.min_contacts,
        )
    return RuleSpec(**common)


class RuleOut(BaseModel):
    id: int
    name: str
    kind: str
    version: int
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class RuleVersionOut(BaseModel):
    version: int
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime


class EnabledIn(BaseModel):
    enabled: bool
