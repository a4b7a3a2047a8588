"""Fuzz the decoders: whatever bytes arrive, they return readings or raise DecodeError.

Anything else (a TypeError, a RecursionError, an OverflowError) would escape the detector's
per-message handling, so the message would reach neither the engine nor the DLQ.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.detection.decode import (
    CONTACT_CHANNELS,
    MAX_TS,
    MIN_TS,
    decode_contact,
    decode_telemetry_into,
    decode_telemetry_message,
)
from app.detection.exceptions import DecodeError
from app.detection.telemetry import Telemetry
from app.domain.contacts import Contact
from tests.reliability.corpus import FAST_PATH_POISON, Poison
from tests.reliability.figures import record, scale

pytestmark = pytest.mark.reliability

EXAMPLES = 400 * scale()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REASONS = {
    "empty",
    "too_large",
    "not_utf8",
    "not_json",
    "non_finite_number",
    "not_object",
    "missing_field",
    "bad_type",
    "bad_timestamp",
    "unsupported_ves_domain",
    "no_measurements",
}
NOW_MS = int(time.time() * 1000)
TALLY: dict[str, int] = {}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: also integers no double (and no orjson) can hold
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
timestamps = st.one_of(
    json_values,
    st.integers(min_value=NOW_MS - 10**12, max_value=NOW_MS + 10**12),
    st.sampled_from(["2026-11-24T08:00:00+01:00", "2026-11-24T08:00:00Z", "2026-11-24T08:00:00"]),
)
valid_ts = st.one_of(
    st.integers(min_value=NOW_MS - 10**10, max_value=NOW_MS + 10**10),
    st.sampled_from(["2026-11-24T08:00:00+01:00", "2026-11-24T07:00:00Z"]),
)
valid_telemetry = st.fixed_dictionaries(
    {
        "ts": valid_ts,
        "device_id": st.text(min_size=1, max_size=12),
        "metric": st.sampled_from(["cpe.online", "stb.snr_db", "olt.los"]),
        "value": st.one_of(
            st.booleans(),
            st.integers(min_value=-(2**53), max_value=2**53),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
    },
    optional={"labels": st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3)},
)
DROP = object()


def with_one_field_broken(document: dict[str, Any], key: str, value: object) -> dict[str, Any]:
    """Replace (or drop, for DROP) one field of an otherwise valid document."""
    broken = dict(document)
    if value is DROP:
        broken.pop(key, None)
    else:
        broken[key] = value
    return broken


telemetry_like = st.one_of(
    valid_telemetry,
    st.builds(
        with_one_field_broken,
        valid_telemetry,
        st.sampled_from(["ts", "device_id", "metric", "value", "labels"]),
        st.one_of(st.just(DROP), json_values, st.sampled_from(["1970-01-01T00:00:00Z", ""])),
    ),
)
valid_micros = st.integers(min_value=(NOW_MS - 10**9) * 1000, max_value=(NOW_MS + 10**9) * 1000)


def ves_header(domain: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "domain": st.just(domain),
            "sourceName": st.text(min_size=1, max_size=8),
            "lastEpochMicrosec": valid_micros,
        },
        optional={"eventSourceType": st.text(max_size=6), "reportingEntityName": json_values},
    )


valid_ves_event = st.one_of(
    st.fixed_dictionaries({"commonEventHeader": ves_header("heartbeat")}),
    st.fixed_dictionaries(
        {
            "commonEventHeader": ves_header("fault"),
            "faultFields": st.fixed_dictionaries(
                {
                    "alarmCondition": st.text(min_size=1, max_size=8),
                    "eventSeverity": st.sampled_from(["CRITICAL", "NORMAL", "minor"]),
                },
                optional={
                    "specificProblem": json_values,
                    "alarmAdditionalInformation": st.one_of(
                        st.dictionaries(st.text(max_size=6), json_values, max_size=3), json_values
                    ),
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "commonEventHeader": ves_header("measurement"),
            "measurementFields": st.fixed_dictionaries(
                {},
                optional={
                    "additionalMeasurements": st.one_of(
                        st.lists(
                            st.fixed_dictionaries(
                                {
                                    "name": st.one_of(st.text(max_size=6), json_values),
                                    "hashMap": st.one_of(
                                        st.dictionaries(st.text(max_size=6), json_values),
                                        json_values,
                                    ),
                                }
                            ),
                            max_size=3,
                        ),
                        json_values,
                    ),
                    "additionalFields": st.one_of(
                        st.dictionaries(st.text(max_size=6), json_values), json_values
                    ),
                },
            ),
        }
    ),
)


def with_one_ves_field_broken(
    event: dict[str, Any], part: str, key: str, value: object
) -> dict[str, Any]:
    """Break one field of a VES event: in its header, or one of its top-level parts."""
    if part == "header" and isinstance(event.get("commonEventHeader"), dict):
        return {
            **event,
            "commonEventHeader": with_one_field_broken(event["commonEventHeader"], key, value),
        }
    return with_one_field_broken(event, part, value)


ves_event = st.one_of(
    valid_ves_event,
    st.builds(
        with_one_ves_field_broken,
        valid_ves_event,
        st.sampled_from(["header", "commonEventHeader", "faultFields", "measurementFields"]),
        st.sampled_from(["domain", "sourceName", "lastEpochMicrosec"]),
        st.one_of(st.just(DROP), json_values, st.just("syslog")),
    ),
)
ves_like = st.one_of(
    st.fixed_dictionaries({"event": st.one_of(ves_event, json_values)}),
    st.fixed_dictionaries({"eventList": st.one_of(st.lists(ves_event, max_size=3), json_values)}),
)
valid_contact = st.fixed_dictionaries(
    {"ts": valid_ts},
    optional={
        "customer_id": st.text(min_size=1, max_size=8),
        "phone": st.just("+4915112345678"),
        "channel": st.sampled_from(sorted(CONTACT_CHANNELS)),
        "topic": st.text(max_size=12),
    },
)
contact_like = st.one_of(
    valid_contact,
    st.builds(
        with_one_field_broken,
        valid_contact,
        st.sampled_from(["ts", "customer_id", "phone", "channel"]),
        st.one_of(st.just(DROP), json_values),
    ),
)


def as_bytes(document: object) -> bytes:
    """Serialise like a careless producer would: NaN and Infinity as bare literals."""
    return json.dumps(document, allow_nan=True).encode()


def tally(outcome: str) -> None:
    TALLY[outcome] = TALLY.get(outcome, 0) + 1


def check_telemetry(raw: bytes | None) -> None:
    """The decoders' contract: readings that honour the telemetry contract, or DecodeError."""
    try:
        readings = decode_telemetry_message(raw)
    except DecodeError as exc:
        assert exc.reason in REASONS, exc.reason
        tally(exc.reason)
        try:  # the detector's hot path agrees
            decode_telemetry_into(raw, [])
        except DecodeError as again:
            assert again.reason == exc.reason
        else:
            raise AssertionError(f"the hot path took what the slow path refused: {exc}")
        return
    assert readings, "a message that decodes gives at least one reading"
    for reading in readings:
        assert isinstance(reading, Telemetry)
        assert MIN_TS <= reading.ts < MAX_TS
        assert isinstance(reading.device_id, str) and reading.device_id
        assert isinstance(reading.metric, str)
        assert reading.metric  # from VES too (test_a_ves_measurement_never_gives_...)
        assert isinstance(reading.value, float) and math.isfinite(reading.value)
        assert reading.labels is None or all(
            isinstance(k, str) and isinstance(v, str) for k, v in reading.labels.items()
        )
    into: list[Telemetry] = []
    decode_telemetry_into(raw, into)
    assert into == readings
    tally("decoded")


def check_contact(raw: bytes | None) -> None:
    try:
        contact = decode_contact(raw)
    except DecodeError as exc:
        assert exc.reason in REASONS, exc.reason
        tally(f"contact_{exc.reason}")
        return
    assert isinstance(contact, Contact)
    assert MIN_TS <= contact.ts < MAX_TS
    assert contact.channel in CONTACT_CHANNELS
    assert contact.customer_id is not None or contact.phone is not None
    tally("contact_decoded")


def hashable_channel(document: object) -> bool:
    """False for the case `test_a_contact_whose_channel_is_a_list_...` pins (a known bug)."""
    if not isinstance(document, dict) or "channel" not in document:
        return True
    return not isinstance(document["channel"], list | dict)


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_raise_decode_error(raw: bytes) -> None:
    check_telemetry(raw)
    check_contact(raw)


@FUZZ
@given(document=json_values)
def test_arbitrary_json_values_decode_or_raise_decode_error(document: Any) -> None:
    raw = as_bytes(document)
    check_telemetry(raw)
    assume(hashable_channel(document))
    check_contact(raw)


@FUZZ
@given(document=st.one_of(telemetry_like, ves_like))
def test_telemetry_shaped_documents_decode_or_raise_decode_error(document: Any) -> None:
    check_telemetry(as_bytes(document))


@FUZZ
@given(document=contact_like)
def test_contact_shaped_documents_decode_or_raise_decode_error(document: Any) -> None:
    assume(hashable_channel(document))
    check_contact(as_bytes(document))


@FUZZ
@given(document=telemetry_like, data=st.data())
def test_damaged_messages_decode_or_raise_decode_error(document: Any, data: st.DataObject) -> None:
    """Cut a plausible message short, or overwrite some of its bytes."""
    raw = bytearray(as_bytes(document))
    if raw and data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    for _ in range(data.draw(st.integers(0, 3))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    check_telemetry(bytes(raw))
    check_contact(bytes(raw))


def test_deep_nesting_and_huge_messages_are_refused_with_a_reason() -> None:
    """By the slow path; the hot path agrees (FAST_PATH_POISON)."""
    assert_reason(b"[" * 10_000 + b"]" * 10_000, "not_json")
    assert_reason(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "not_json")
    assert_reason(b'{"x": "' + b"y" * (1024 * 1024) + b'"}', "too_large")


def test_the_fuzzing_reached_every_kind_of_outcome() -> None:
    """Runs after the fuzz tests in this module: report what they exercised."""
    record("fuzz", {"examples_per_test": EXAMPLES, "outcomes": dict(sorted(TALLY.items()))})
    if TALLY:  # this test alone (pytest -k) has nothing to check
        for outcome in ("decoded", "not_json", "bad_type", "missing_field", "bad_timestamp"):
            assert TALLY.get(outcome, 0) > 0, (outcome, TALLY)


def assert_reason(raw: bytes, expected: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_telemetry_message(raw)
    assert caught.value.reason == expected


@pytest.mark.parametrize("channel", [[], {}, ["call"]])
def test_a_contact_whose_channel_is_a_list_or_an_object_is_refused_as_bad_type(
    channel: object,
) -> None:
    raw = orjson.dumps({"ts": NOW_MS, "customer_id": "c-1", "channel": channel})
    with pytest.raises(DecodeError) as caught:
        decode_contact(raw)
    assert caught.value.reason == "bad_type"


def test_an_integer_too_large_for_a_double_is_refused_as_non_finite_number() -> None:
    raw = b'{"ts": 1, "device_id": "d", "metric": "m", "value": ' + b"9" * 400 + b"}"
    assert_reason(raw, "non_finite_number")


def test_a_ves_measurement_never_gives_a_reading_with_an_empty_metric() -> None:
    header = {"domain": "measurement", "sourceName": "cell-1", "lastEpochMicrosec": NOW_MS * 1000}
    raw = orjson.dumps(
        {"event": {"commonEventHeader": header, "measurementFields": {"additionalFields": {"": 1}}}}
    )
    try:
        readings = decode_telemetry_message(raw)
    except DecodeError:
        return
    assert all(reading.metric for reading in readings)


@pytest.mark.parametrize("poison", FAST_PATH_POISON, ids=lambda p: p.name)
def test_the_hot_path_refuses_what_the_slow_path_refuses_with_decode_error(poison: Poison) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_telemetry_into(poison.value, [])
    assert caught.value.reason in poison.reasons


def test_the_hot_path_refuses_invalid_utf8_in_a_field_name() -> None:
    raw = b'{"\x80abels": {}, "device_id": "d", "metric": "m", "value": 1, "ts": 1795000000000}'
    assert_reason(raw, "not_utf8")  # the slow path
    with pytest.raises(DecodeError) as caught:
        decode_telemetry_into(raw, [])
    assert caught.value.reason == "not_utf8"
