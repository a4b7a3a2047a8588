"""The poison corpus: telemetry that breaks contract v1 (or VES) in every documented way,
each item with the DLQ reason docs/telemetry.md gives for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MiB = 1024 * 1024


@dataclass(frozen=True)
class Poison:
    name: str
    value: bytes | None
    reasons: tuple[str, ...]  # the documented reason; two only where the docs leave it open


TS = 1_795_000_000_000


def reading(**fields: Any) -> bytes:
    """A contract-v1 message with `fields` changed (Ellipsis drops a field)."""
    message = {"ts": TS, "device_id": "node-0-cpe-0", "metric": "cpe.online", "value": 1}
    message.update(fields)
    return orjson.dumps({k: v for k, v in message.items() if v is not ...})


def literal(value: bytes, field: bytes = b"value") -> bytes:
    """A message whose `field` is written as this raw JSON text (NaN, 1e400...)."""
    fields = {b"ts": b"1795000000000", b"value": b"1", field: value}
    return b'{"ts": %s, "device_id": "d", "metric": "m", "value": %s}' % (
        fields[b"ts"],
        fields[b"value"],
    )


def ves(header: dict[str, Any], **parts: Any) -> bytes:
    common = {"sourceName": "olt-7", "lastEpochMicrosec": TS * 1000, **header}
    return orjson.dumps({"event": {"commonEventHeader": common, **parts}})


BROKEN_UTF8 = reading(device_id="@@").replace(b"@", b"\xff")
LATIN1 = reading(device_id="Müller").decode().encode("latin-1")


def corpus() -> list[Poison]:
    """Malformed telemetry, one item per way a message can break contract v1 (and VES)."""
    heartbeat = orjson.loads(ves({"domain": "heartbeat"}))["event"]
    padding = b"x" * (3 * MiB // 2)
    return [
        Poison("truncated-json", reading()[:40], ("not_json",)),
        Poison("trailing-garbage", reading() + b"}}", ("not_json",)),
        Poison("single-quotes", b"{'ts': 1, 'device_id': 'x'}", ("not_json",)),
        Poison("device-id-number", reading(device_id=17), ("bad_type",)),
        Poison("device-id-empty", reading(device_id=""), ("bad_type",)),
        Poison("metric-list", reading(metric=["cpe.online"]), ("bad_type",)),
        Poison("value-string", reading(value="down"), ("bad_type",)),
        Poison("value-object", reading(value={"online": False}), ("bad_type",)),
        Poison("labels-not-strings", reading(labels={"node": 2}), ("bad_type",)),
        Poison("labels-a-list", reading(labels=["node-2"]), ("bad_type",)),
        Poison("missing-ts", reading(ts=...), ("missing_field",)),
        Poison("missing-value", reading(value=...), ("missing_field",)),
        Poison("missing-device", reading(device_id=...), ("missing_field",)),
        Poison("value-1e400", literal(b"1e400"), ("non_finite_number",)),
        Poison("value-nan", literal(b"NaN"), ("non_finite_number",)),
        Poison("value-infinity", literal(b"Infinity"), ("non_finite_number",)),
        Poison("value-minus-infinity", literal(b"-Infinity"), ("non_finite_number",)),
        Poison("ts-1e400", literal(b"1e400", b"ts"), ("non_finite_number",)),
        Poison("nested-arrays-10k", b"[" * 10_000 + b"]" * 10_000, ("not_json",)),
        Poison("one-and-a-half-mib", b'{"pad": "' + padding + b'"}', ("too_large",)),
        Poison("invalid-utf8-in-a-string", BROKEN_UTF8, ("not_utf8",)),
        Poison("latin1-text", LATIN1, ("not_utf8",)),
        Poison("invalid-utf8-before-the-json", b"\xff\xfe" + reading(), ("not_utf8",)),
        Poison("truncated-utf8-after-the-json", reading() + b"\xe2\x82", ("not_utf8",)),
        Poison("ts-1970", reading(ts="1970-01-01T00:00:00Z"), ("bad_timestamp",)),
        Poison("ts-year-2999", reading(ts="2999-01-01T00:00:00+00:00"), ("bad_timestamp",)),
        Poison("ts-seconds-not-ms", reading(ts=1_795_000_000), ("bad_timestamp",)),
        Poison("ts-microseconds", reading(ts=TS * 1000), ("bad_timestamp",)),
        Poison("ts-no-offset", reading(ts="2026-11-24T08:00:00"), ("bad_timestamp",)),
        Poison("ts-words", reading(ts="yesterday"), ("bad_timestamp",)),
        Poison("ts-boolean", reading(ts=True), ("bad_timestamp",)),
        Poison("null-value", None, ("empty",)),
        # docs/telemetry.md: `empty` is "the message has no value"; zero bytes is arguably that.
        Poison("zero-bytes", b"", ("empty", "not_json")),
        Poison("whitespace", b"   \n", ("not_json",)),
        Poison("json-array", b"[" + reading() + b"]", ("not_object",)),
        Poison("json-string", b'"cpe.online"', ("not_object",)),
        Poison("json-null", b"null", ("not_object",)),
        Poison("json-number", b"42", ("not_object",)),
        Poison("ves-syslog-domain", ves({"domain": "syslog"}), ("unsupported_ves_domain",)),
        Poison("ves-no-header", orjson.dumps({"event": {"faultFields": {}}}), ("missing_field",)),
        Poison("ves-no-source", ves({"domain": "heartbeat", "sourceName": ""}), ("missing_field",)),
        Poison(
            "ves-ts-text",
            ves({"domain": "heartbeat", "lastEpochMicrosec": "soon"}),
            ("bad_timestamp",),
        ),
        Poison(
            "ves-ts-1970",
            ves({"domain": "heartbeat", "lastEpochMicrosec": 1_000_000}),
            ("bad_timestamp",),
        ),
        Poison(
            "ves-fault-no-condition",
            ves({"domain": "fault"}, faultFields={"eventSeverity": "CRITICAL"}),
            ("missing_field",),
        ),
        Poison("ves-fault-no-fields", ves({"domain": "fault"}), ("missing_field",)),
        Poison(
            "ves-measurement-text-only",
            ves({"domain": "measurement"}, measurementFields={"additionalFields": {"x": "high"}}),
            ("no_measurements",),
        ),
        Poison(
            "ves-measurements-not-a-list",
            ves({"domain": "measurement"}, measurementFields={"additionalMeasurements": {"a": 1}}),
            ("bad_type",),
        ),
        Poison("ves-empty-event-list", orjson.dumps({"eventList": []}), ("bad_type",)),
        Poison(
            "ves-event-list-with-a-bad-one",
            orjson.dumps({"eventList": [heartbeat, 7]}),
            ("bad_type",),
        ),
    ]


# Messages that once escaped the detector's hot path (msgspec) instead of raising DecodeError
# (an integer beyond a double: OverflowError; deep nesting, even in an ignored field:
# RecursionError), so they cost their batch; fixed, kept as regression tests by test_fuzz.py
# and test_poison.py. (name, bytes, reasons the slow path gives.)
DEEP_EXTRA_FIELD = reading()[:-1] + b', "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
FAST_PATH_POISON = [
    Poison("integer-value-beyond-a-double", literal(b"9" * 400), ("non_finite_number",)),
    Poison("nested-objects-10k", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, ("not_json",)),
    Poison("ignored-field-2k-deep", DEEP_EXTRA_FIELD, ("not_json",)),
]  # fmt: skip
