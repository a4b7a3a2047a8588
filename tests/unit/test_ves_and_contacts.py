"""ONAP VES 7.x events and contact-centre messages decode into engine inputs, or say why not."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.detection.decode import decode_contact, decode_telemetry_message
from app.detection.exceptions import DecodeError

MICROS = 1_795_330_800_000_000  # 2026-11-22T07:00:00Z


def header(domain: str, **extra: Any) -> dict[str, Any]:
    return {
        "domain": domain,
        "eventId": "e-1",
        "eventName": f"{domain}_olt",
        "sourceName": "olt-7",
        "reportingEntityName": "ems-1",
        "eventSourceType": "OLT",
        "startEpochMicrosec": MICROS,
        "lastEpochMicrosec": MICROS,
        "priority": "High",
        "sequence": 1,
        "version": "4.1",
        "vesEventListenerVersion": "7.2.1",
        **extra,
    }


def fault(severity: str) -> bytes:
    return orjson.dumps(
        {
            "event": {
                "commonEventHeader": header("fault"),
                "faultFields": {
                    "faultFieldsVersion": "4.0",
                    "alarmCondition": "olt.los",
                    "eventSeverity": severity,
                    "specificProblem": "Loss of signal on PON port 3",
                    "vfStatus": "Active",
                    "alarmAdditionalInformation": {"node": "node-17", "port": "3"},
                },
            }
        }
    )


def test_a_ves_fault_becomes_an_alarm_reading_with_its_severity_and_place() -> None:
    [event] = decode_telemetry_message(fault("CRITICAL"))
    assert (event.device_id, event.metric, event.value) == ("olt-7", "olt.los", 1.0)
    assert event.ts == MICROS / 1_000_000
    assert event.labels is not None
    assert event.labels["severity"] == "critical"
    assert event.labels["node"] == "node-17"
    assert event.labels["ves_domain"] == "fault"


def test_a_ves_fault_with_severity_normal_is_the_clear() -> None:
    [event] = decode_telemetry_message(fault("NORMAL"))
    assert event.value == 0.0


def test_a_ves_heartbeat_becomes_a_heartbeat_reading() -> None:
    message = {
        "event": {
            "commonEventHeader": header("heartbeat"),
            "heartbeatFields": {"heartbeatFieldsVersion": "3.0", "heartbeatInterval": 60},
        }
    }
    [event] = decode_telemetry_message(orjson.dumps(message))
    assert (event.metric, event.value) == ("ves.heartbeat", 1.0)


def test_a_ves_measurement_becomes_one_reading_per_numeric_value() -> None:
    message = {
        "eventList": [
            {
                "commonEventHeader": header("measurement"),
                "measurementFields": {
                    "measurementFieldsVersion": "4.0",
                    "measurementInterval": 60,
                    "additionalMeasurements": [
                        {"name": "pon", "hashMap": {"rx_power_dbm": "-21.5", "state": "up"}}
                    ],
                    "additionalFields": {"cpu_pct": "37"},
                },
            }
        ]
    }
    events = decode_telemetry_message(orjson.dumps(message))
    assert {(e.metric, e.value) for e in events} == {("pon.rx_power_dbm", -21.5), ("cpu_pct", 37.0)}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"event": {"commonEventHeader": header("syslog")}}, "unsupported_ves_domain"),
        ({"event": {"faultFields": {}}}, "missing_field"),
        ({"event": {"commonEventHeader": header("fault")}}, "missing_field"),
        ({"eventList": []}, "bad_type"),
        (
            {"event": {"commonEventHeader": header("heartbeat", lastEpochMicrosec="now")}},
            "bad_timestamp",
        ),
        (
            {"event": {"commonEventHeader": header("heartbeat", lastEpochMicrosec=1)}},
            "bad_timestamp",
        ),
    ],
)
def test_bad_ves_events_are_refused_with_a_reason(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_telemetry_message(orjson.dumps(message))
    assert caught.value.reason == reason


def test_contract_v1_still_decodes_through_the_same_entry_point() -> None:
    raw = b'{"ts": 1795330800000, "device_id": "cpe-1", "metric": "cpe.online", "value": 0}'
    [event] = decode_telemetry_message(raw)
    assert (event.device_id, event.value) == ("cpe-1", 0.0)


def test_a_contact_by_customer_or_phone_decodes() -> None:
    by_id = decode_contact(
        b'{"ts": "2026-11-22T07:00:00Z", "customer_id": "c-1", "channel": "call"}'
    )
    assert (by_id.customer_id, by_id.channel, by_id.ts) == ("c-1", "call", 1_795_330_800.0)
    by_phone = decode_contact(b'{"ts": 1795330800000, "phone": "+4915112345678", "topic": "tv"}')
    assert (by_phone.phone, by_phone.channel) == ("+4915112345678", "call")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"customer_id": "c-1"}', "missing_field"),
        (b'{"ts": 1795330800000}', "missing_field"),
        (b'{"ts": 1795330800000, "customer_id": 7}', "bad_type"),
        (b'{"ts": 1795330800000, "customer_id": "c-1", "channel": "pigeon"}', "bad_type"),
        (b'{"ts": "soon", "customer_id": "c-1"}', "bad_timestamp"),
    ],
)
def test_bad_contacts_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_contact(raw)
    assert caught.value.reason == reason
