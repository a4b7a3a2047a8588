"""ONAP VES 7.x events (fault, heartbeat, measurement) as Forewarn telemetry.

Mapping (documented in docs/telemetry.md):
- every event: `device_id` = `commonEventHeader.sourceName`, `ts` = `lastEpochMicrosec`
  (or `startEpochMicrosec`), labels `ves_domain`, `source_type` and `reporting_entity`.
- fault: `metric` = `faultFields.alarmCondition`, `value` = 0 when `eventSeverity` is NORMAL
  (the clear) and 1 otherwise; labels `severity` (lower case), `specific_problem`, and every
  `alarmAdditionalInformation` entry.
- heartbeat: `metric` = `ves.heartbeat`, `value` = 1.
- measurement: one event per `additionalMeasurements[].hashMap` entry, `metric` =
  `<name>.<key>`, plus one per numeric `additionalFields` entry; non-numeric values are skipped.
A message may hold one event (`{"event": ...}`) or a batch (`{"eventList": [...]}`).
"""

from __future__ import annotations

import math
from typing import Any

from app.detection.exceptions import DecodeError
from app.detection.telemetry import Telemetry

DOMAINS = ("fault", "heartbeat", "measurement")


def is_ves(data: dict[str, Any]) -> bool:
    return "event" in data or "eventList" in data


def ves_events(data: dict[str, Any]) -> list[Telemetry]:
    """Turn one VES message into telemetry; raise DecodeError naming what is wrong."""
    events = data.get("eventList") if "eventList" in data else [data.get("event")]
    if type(events) is not list or not events:
        raise DecodeError("bad_type", "VES eventList must be a non-empty array")
    out: list[Telemetry] = []
    for position, event in enumerate(events):
        out.extend(_one(event, position))
    return out


def _one(event: object, position: int) -> list[Telemetry]:
    where = f"event {position}"
    if type(event) is not dict:
        raise DecodeError("bad_type", f"VES {where} is not an object")
    header = event.get("commonEventHeader")
    if type(header) is not dict:
        raise DecodeError("missing_field", f"VES {where} has no commonEventHeader")
    domain = header.get("domain")
    if domain not in DOMAINS:
        raise DecodeError(
            "unsupported_ves_domain", f"VES {where} domain {domain!r} is not one of {DOMAINS}"
        )
    source = header.get("sourceName")
    if type(source) is not str or not source:
        raise DecodeError("missing_field", f"VES {where} commonEventHeader.sourceName is missing")
    micros = header.get("lastEpochMicrosec", header.get("startEpochMicrosec"))
    if not isinstance(micros, int | float) or isinstance(micros, bool):
        raise DecodeError("bad_timestamp", f"VES {where} has no lastEpochMicrosec")
    ts = micros / 1_000_000
    if not math.isfinite(ts):
        raise DecodeError("bad_timestamp", f"VES {where} lastEpochMicrosec is not finite")
    labels = {"ves_domain": str(domain)}
    for key, label in (
        ("eventSourceType", "source_type"),
        ("reportingEntityName", "reporting_entity"),
    ):
        if type(header.get(key)) is str:
            labels[label] = header[key]
    if domain == "heartbeat":
        return [Telemetry(ts, source, "ves.heartbeat", 1.0, labels)]
    if domain == "fault":
        return [_fault(event.get("faultFields"), where, ts, source, labels)]
    return _measurements(event.get("measurementFields"), where, ts, source, labels)


def _fault(fields: object, where: str, ts: float, source: str, labels: dict[str, str]) -> Telemetry:
    if type(fields) is not dict:
        raise DecodeError("missing_field", f"VES {where} fault event has no faultFields")
    condition = fields.get("alarmCondition")
    severity = fields.get("eventSeverity")
    if type(condition) is not str or not condition:
        raise DecodeError("missing_field", f"VES {where} faultFields.alarmCondition is missing")
    if type(severity) is not str:
        raise DecodeError("missing_field", f"VES {where} faultFields.eventSeverity is missing")
    labels = {**labels, "severity": severity.lower()}
    if type(fields.get("specificProblem")) is str:
        labels["specific_problem"] = fields["specificProblem"]
    extra = fields.get("alarmAdditionalInformation")
    if type(extra) is dict:
        labels.update({str(k): str(v) for k, v in extra.items() if type(v) is str})
    value = 0.0 if severity.upper() == "NORMAL" else 1.0
    return Telemetry(ts, source, condition, value, labels)


def _measurements(
    fields: object, where: str, ts: float, source: str, labels: dict[str, str]
) -> list[Telemetry]:
    if type(fields) is not dict:
        raise DecodeError("missing_field", f"VES {where} measurement has no measurementFields")
    out: list[Telemetry] = []
    groups = fields.get("additionalMeasurements") or []
    if type(groups) is not list:
        raise DecodeError("bad_type", f"VES {where} additionalMeasurements must be an array")
    for group in groups:
        if type(group) is not dict or type(group.get("name")) is not str:
            continue
        values = group.get("hashMap")
        if type(values) is dict:
            out.extend(_numeric(f"{group['name']}.", values, ts, source, labels))
    extra = fields.get("additionalFields")
    if type(extra) is dict:
        out.extend(_numeric("", extra, ts, source, labels))
    if not out:
        raise DecodeError("no_measurements", f"VES {where} carries no numeric measurement")
    return out


def _numeric(
    prefix: str, values: dict[str, Any], ts: float, source: str, labels: dict[str, str]
) -> list[Telemetry]:
    out: list[Telemetry] = []
    for key, raw in values.items():
        if not key:  # a metric needs a name, as in contract v1
            continue
        try:
            number = float(raw)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out.append(Telemetry(ts, source, f"{prefix}{key}", number, labels))
    return out
