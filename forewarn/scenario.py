"""Simulation scenarios: a network, its customers, its telemetry, the faults to inject.

A scenario is a YAML file (docs/simulator.md describes every field; forewarn/scenarios/ holds ready
ones). Every time in it is *scenario time* in seconds from the start (a number, or a duration
such as `5m`); `time_scale` says how many scenario seconds pass per wall-clock second, so a
20-minute scenario at `time_scale: 10` plays in 2 minutes. Telemetry and contacts carry
scenario time as their event time, and Forewarn's rules run on event time, so detection plays
out exactly as it would at 1x.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.durations import parse_duration
from app.inventory.schemas import Language, QuietHours, check_timezone, normalise_phone
from app.rules.schemas import AbsenceRule, AnyRule, RuleDefinition

SUBSCRIBER_DIGITS = 8  # the digits after a phone prefix: +49151 and 8 digits is a German mobile
REGION_NAMES = ("north", "south", "east", "west", "central")


def _to_seconds(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value).total_seconds()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


Seconds = Annotated[float, BeforeValidator(_to_seconds), Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]
ContactChannel = Literal["call", "chat", "ticket"]


def _weights_positive(weights: dict[Any, float], field: str) -> None:
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"{field}: give at least one positive weight and no negative ones")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkSpec(_Strict):
    """Regions > hubs > nodes; on every node modems (one customer each), set-top boxes, an OLT."""

    regions: int = Field(default=1, ge=1, le=len(REGION_NAMES))
    hubs_per_region: int = Field(default=2, ge=1, le=50)
    nodes_per_hub: int = Field(default=3, ge=1, le=50)
    modems_per_node: int = Field(default=30, ge=1, le=5000)
    set_top_box_share: Share = 0.5
    olt_per_node: bool = True

    def region_ids(self) -> list[str]:
        return list(REGION_NAMES[: self.regions])

    def hub_ids(self) -> list[str]:
        return [
            f"{r}-hub-{h}" for r in self.region_ids() for h in range(1, self.hubs_per_region + 1)
        ]

    def node_ids(self) -> list[str]:
        return [
            f"{hub}-node-{n}" for hub in self.hub_ids() for n in range(1, self.nodes_per_hub + 1)
        ]

    @property
    def modems(self) -> int:
        return self.regions * self.hubs_per_region * self.nodes_per_hub * self.modems_per_node


class CustomerSpec(_Strict):
    """Who owns the modems: languages, contact details and preferences, drawn by weight."""

    languages: dict[Language, float] = Field(
        default_factory=lambda: {
            Language.DE: 0.55,
            Language.EN: 0.2,
            Language.ES: 0.1,
            Language.VI: 0.08,
            Language.HI: 0.07,
        }
    )
    channels: dict[str, float] = Field(
        default_factory=lambda: {"sms+email": 0.5, "sms": 0.3, "email": 0.2},
        description="Channel sets by weight; a set is channels joined by '+'.",
    )
    phone_prefixes: list[str] = Field(
        default_factory=lambda: ["+49151", "+49152", "+49157", "+49170", "+49176"], min_length=1
    )
    email_domain: str = Field(default="example.com", pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    timezone: str = "Europe/Berlin"
    priority_share: Share = 0.03
    quiet_hours_share: Share = 0.15
    quiet_hours: QuietHours = Field(default_factory=lambda: QuietHours(start="22:00", end="07:00"))

    @model_validator(mode="after")
    def _check(self) -> Self:
        _weights_positive(dict(self.languages), "languages")
        _weights_positive(self.channels, "channels")
        for key in self.channels:
            parts = key.split("+")
            if not set(parts) <= {"sms", "email"} or len(set(parts)) != len(parts):
                raise ValueError(f"channels: {key!r} is not sms, email or sms+email")
        for prefix in self.phone_prefixes:
            try:
                normalise_phone(prefix + "1" * SUBSCRIBER_DIGITS)
            except ValueError:
                raise ValueError(
                    f"phone_prefixes: {prefix} followed by {SUBSCRIBER_DIGITS} digits is not "
                    "a valid number (e.g. +49151)"
                ) from None
        check_timezone(self.timezone)
        return self


class TelemetrySpec(_Strict):
    """How devices report: modems `cpe.heartbeat` and `cpe.online`, set-top boxes `stb.snr_db`."""

    heartbeat_interval: Seconds = 30.0
    jitter: float = Field(default=0.1, ge=0, lt=0.5, description="± share of an interval")
    snr_interval: Seconds = Field(default=30.0, description="0: set-top boxes send no SNR")
    snr_db: float = Field(default=34.0, gt=0, lt=60)
    snr_spread: float = Field(default=1.5, ge=0, le=10)
    rate_multiplier: float = Field(default=1.0, ge=1, le=100)

    @model_validator(mode="after")
    def _positive_interval(self) -> Self:
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be above 0")
        return self


def _default_contact_channels() -> dict[ContactChannel, float]:
    return {"call": 0.85, "chat": 0.15}


class CallsSpec(_Strict):
    """How affected customers get in touch (topic `contacts`) once a fault hits them."""

    first_after: Seconds = 240.0
    share: Share = 0.2
    over: Seconds = 600.0
    channels: dict[ContactChannel, float] = Field(default_factory=_default_contact_channels)
    by_phone_share: Share = 0.7
    background_per_hour: float = Field(default=2.0, ge=0, le=100_000)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _weights_positive(dict(self.channels), "calls.channels")
        return self


class _Fault(_Strict):
    start: Seconds
    duration: Seconds
    calls: bool | None = Field(default=None, description="Do affected customers call? None: kind")
    note: str | None = None

    expects_outage: ClassVar[bool] = True  # whether a rule should open an outage on its scope

    @property
    def scope_id(self) -> str:
        raise NotImplementedError

    @property
    def scope_level(self) -> str:
        return place_level(self.scope_id)

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def customers_call(self) -> bool:
        return self.expects_outage if self.calls is None else self.calls

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    @model_validator(mode="after")
    def _lasts(self) -> Self:
        if self.duration <= 0:
            raise ValueError("duration must be above 0")
        return self


class FibreCut(_Fault):
    """Every device on the node goes silent."""

    kind: Literal["fibre_cut"]
    node: str

    @property
    def scope_id(self) -> str:
        return self.node


class PowerOutage(_Fault):
    """Every device on every node of the hub goes silent."""

    kind: Literal["power_outage"]
    hub: str

    @property
    def scope_id(self) -> str:
        return self.hub


class TvDegraded(_Fault):
    """The node's set-top boxes report `stb.snr_db` around `snr_db` (below 25 is poor)."""

    kind: Literal["tv_degraded"]
    node: str
    snr_db: float = Field(default=20.0, gt=0, lt=60)

    @property
    def scope_id(self) -> str:
        return self.node


class FlappingDevice(_Fault):
    """One modem goes offline and back every `period`: noise that must open nothing."""

    kind: Literal["flapping_device"]
    device: str
    period: Seconds = 60.0
    expects_outage: ClassVar[bool] = False

    @property
    def scope_id(self) -> str:
        return self.device

    @property
    def scope_level(self) -> str:
        return "device"


class OltAlarm(_Fault):
    """The node's OLT raises `olt.los` (critical) at the start and `olt.los_clear` at the end."""

    kind: Literal["olt_alarm"]
    node: str

    @property
    def scope_id(self) -> str:
        return self.node


class MaintenanceWork(_Fault):
    """A maintenance window posted through the API before it starts; with
    `interrupts_service`, the devices under the scope are silent while it lasts."""

    kind: Literal["maintenance"]
    scope: str
    reason: str = Field(default="Planned network maintenance", min_length=1, max_length=2000)
    services: list[str] = Field(default_factory=list)
    interrupts_service: bool = True
    expects_outage: ClassVar[bool] = False

    @property
    def scope_id(self) -> str:
        return self.scope


Fault = Annotated[
    FibreCut | PowerOutage | TvDegraded | FlappingDevice | OltAlarm | MaintenanceWork,
    Field(discriminator="kind"),
]


def default_rules(heartbeat_interval: float = 30.0) -> list[dict[str, Any]]:
    """examples/rules.yaml, tuned to find the simulated faults before customers call."""
    return [
        {
            "name": "olt-port-los",
            "kind": "alarm",
            "metric": "olt.los",
            "scope": "node",
            "match": {"severity": "critical"},
            "clear_metric": "olt.los_clear",
            "severity": "critical",
            "services": ["internet", "tv", "voice"],
        },
        {
            "name": "modems-silent",
            "kind": "absence",
            "metric": "cpe.heartbeat",
            "scope": "node",
            "expected_interval": heartbeat_interval,
            "missed_intervals": 3,
            "threshold": 0.5,
            "clear_threshold": 0.2,
            "min_devices": 10,
            "for": "0s",
            "confirm_after": "30s",
            "severity": "major",
            "services": ["internet", "tv", "voice"],
        },
        {
            "name": "tv-signal-poor",
            "kind": "threshold",
            "metric": "stb.snr_db",
            "scope": "node",
            "aggregate": "p50",
            "window": "2m",
            "op": "<",
            "threshold": 25,
            "clear_threshold": 28,
            "min_samples": 20,
            "for": "30s",
            "confirm_after": "0s",
            "severity": "minor",
            "services": ["tv"],
        },
        {
            "name": "calls-spike",
            "kind": "contacts_spike",
            "scope": "node",
            "window": "5m",
            "factor": 4,
            "min_contacts": 5,
            "severity": "major",
            "services": ["internet"],
        },
        {
            "name": "modems-down-on-node",
            "kind": "ratio_down",
            "metric": "cpe.online",
            "scope": "node",
            "threshold": 0.3,
            "clear_threshold": 0.1,
            "min_devices": 10,
            "for": "30s",
            "confirm_after": "0s",
            "severity": "major",
            "services": ["internet"],
        },
    ]


class Scenario(_Strict):
    """A whole scenario file."""

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    seed: int = 7
    time_scale: float = Field(default=1.0, gt=0, le=1000)
    duration: Seconds | None = Field(default=None, description="None: last fault end + settle")
    settle: Seconds = 300.0
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    customers: CustomerSpec = Field(default_factory=CustomerSpec)
    telemetry: TelemetrySpec = Field(default_factory=TelemetrySpec)
    calls: CallsSpec = Field(default_factory=CallsSpec)
    faults: list[Fault] = Field(default_factory=list)
    rules: list[RuleDefinition] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_rules(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("rules") is None:
            telemetry = data.get("telemetry") or {}
            interval = (
                telemetry.get("heartbeat_interval", 30.0) if isinstance(telemetry, dict) else 30.0
            )
            data = {**data, "rules": default_rules(_to_seconds(interval))}  # type: ignore[arg-type]
        return data

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        nodes = set(self.network.node_ids())
        hubs = set(self.network.hub_ids())
        places = nodes | hubs | set(self.network.region_ids())
        for i, fault in enumerate(self.faults):
            where = f"faults[{i}] ({fault.kind})"
            if isinstance(fault, OltAlarm) and not self.network.olt_per_node:
                raise ValueError(f"{where}: needs network.olt_per_node")
            if isinstance(fault, FibreCut | TvDegraded | OltAlarm) and fault.scope_id not in nodes:
                raise ValueError(f"{where}: no node {fault.scope_id!r}; nodes: {_sample(nodes)}")
            if isinstance(fault, PowerOutage) and fault.hub not in hubs:
                raise ValueError(f"{where}: no hub {fault.hub!r}; hubs: {_sample(hubs)}")
            if isinstance(fault, MaintenanceWork) and fault.scope not in places:
                raise ValueError(f"{where}: no region, hub or node {fault.scope!r}")
            if isinstance(fault, FlappingDevice) and not _is_modem(fault.device, self.network):
                raise ValueError(
                    f"{where}: no modem {fault.device!r}; modems are cpe-00001 "
                    f"to cpe-{self.network.modems:05d}"
                )
        for rule in self.rules or ():
            if isinstance(rule, AbsenceRule) and rule.metric == "cpe.heartbeat":
                interval = rule.expected_interval.total_seconds()
                if interval < self.telemetry.heartbeat_interval:
                    raise ValueError(
                        f"rule {rule.name}: expected_interval ({interval:g}s) is shorter than "
                        f"telemetry.heartbeat_interval ({self.telemetry.heartbeat_interval:g}s); "
                        "every modem would look silent"
                    )
        return self

    @property
    def end(self) -> float:
        """Scenario seconds the script lasts."""
        if self.duration is not None:
            return self.duration
        return max((f.end for f in self.faults), default=0.0) + self.settle

    @property
    def rule_definitions(self) -> list[AnyRule]:
        return list(self.rules or ())

    def wall_seconds(self, scenario_seconds: float) -> float:
        return scenario_seconds / self.time_scale


def place_level(place: str) -> str:
    """The topology level of a generated place id: `north`, `north-hub-1`, `north-hub-1-node-2`."""
    if "-node-" in place:
        return "node"
    return "hub" if "-hub-" in place else "region"


def _is_modem(device: str, network: NetworkSpec) -> bool:
    prefix, _, number = device.partition("-")
    return prefix == "cpe" and number.isdigit() and 1 <= int(number) <= network.modems


def _sample(ids: set[str]) -> str:
    ordered = sorted(ids)
    return ", ".join(ordered[:4]) + (", ..." if len(ordered) > 4 else "")


# The ready scenarios, shipped with the package: `forewarn simulate storm` plays storm.yaml.
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def bundled_scenarios() -> list[str]:
    return sorted(path.stem for path in SCENARIOS.glob("*.yaml"))


def scenario_path(name_or_path: str) -> Path:
    """A scenario file given by path, or by the name of a bundled one (`storm`, `demo`...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = SCENARIOS / f"{path.stem}.yaml"
    if path.parent == Path(".") and bundled.is_file():
        return bundled
    raise ValueError(
        f"no scenario file {name_or_path!r}, and no bundled scenario of that name "
        f"(bundled: {', '.join(bundled_scenarios())})"
    )


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; raise ValueError (pydantic's) on a bad one."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario is a YAML mapping")
    data.setdefault("name", path.stem)
    return Scenario.model_validate(data)
