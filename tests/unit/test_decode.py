"""Telemetry contract v1: good messages decode, every bad one gets a precise reason."""

from __future__ import annotations

import gc
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.detection.decode import (
    MAX_MESSAGE_BYTES,
    MAX_TS,
    MIN_TS,
    decode_telemetry_into,
    decode_telemetry_message,
)
from app.detection.exceptions import DecodeError
from app.detection.telemetry import Telemetry
from consumers.telemetry import dead_letter_error

GOOD = {"ts": 1_763_800_000_000, "device_id": "cpe-0001", "metric": "cpe.online", "value": 1}


def encode(**changes: object) -> bytes:
    message = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in message.items() if v is not ...})


def decode_one(raw: bytes | None) -> Telemetry:
    """The one reading of a contract-v1 message, as the detector's decoder makes it."""
    [event] = decode_telemetry_message(raw)
    return event


def reason(raw: bytes | None) -> str:
    with pytest.raises(DecodeError) as caught:
        decode_one(raw)
    return caught.value.reason


def test_epoch_milliseconds_and_booleans_decode() -> None:
    event = decode_one(encode(value=False, labels={"node": "node-17"}))
    assert event.ts == 1_763_800_000.0
    assert event.value == 0.0
    assert event.labels == {"node": "node-17"}


def test_rfc3339_timestamps_with_an_offset_decode() -> None:
    assert decode_one(encode(ts="2026-11-22T08:00:00+01:00")).ts == 1_795_330_800.0
    assert decode_one(encode(ts="2026-11-22T07:00:00Z")).ts == 1_795_330_800.0


def test_unknown_fields_are_ignored() -> None:
    assert decode_one(encode(extra={"nested": [1, 2]})).device_id == "cpe-0001"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "empty"),
        (b"\xff\xfe{}", "not_utf8"),
        (b'{"ts": 1, "device_id": ', "not_json"),
        (b'{"ts": 1, "device_id": "d", "metric": "m", "value": NaN}', "non_finite_number"),
        (b'{"ts": 1, "device_id": "d", "metric": "m", "value": Infinity}', "non_finite_number"),
        (b'{"ts": 1, "device_id": "d", "metric": "m", "value": 1e999}', "non_finite_number"),
        (b"[1, 2, 3]", "not_object"),
        (b'"just a string"', "not_object"),
        (b"[" * 100_000, "not_json"),
    ],
)
def test_unreadable_messages_get_a_reason(raw: bytes | None, expected: str) -> None:
    assert reason(raw) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ts": ...}, "missing_field"),
        ({"device_id": ...}, "missing_field"),
        ({"metric": ...}, "missing_field"),
        ({"value": ...}, "missing_field"),
        ({"device_id": 17}, "bad_type"),
        ({"device_id": ""}, "bad_type"),
        ({"value": "1"}, "bad_type"),
        ({"value": [1]}, "bad_type"),
        ({"labels": {"node": 1}}, "bad_type"),
        ({"labels": ["node"]}, "bad_type"),
        ({"ts": "yesterday"}, "bad_timestamp"),
        ({"ts": "2026-11-22T08:00:00"}, "bad_timestamp"),
        ({"ts": True}, "bad_timestamp"),
        ({"ts": 1_763_800_000}, "bad_timestamp"),  # seconds where milliseconds belong
        ({"ts": 10**17}, "bad_timestamp"),
    ],
)
def test_ill_formed_fields_are_named(changes: dict[str, object], expected: str) -> None:
    assert reason(encode(**changes)) == expected


def test_messages_over_one_mebibyte_are_refused_before_parsing() -> None:
    padding = "x" * MAX_MESSAGE_BYTES
    assert reason(encode(pad=padding)) == "too_large"


@given(st.binary(max_size=512))
def test_any_bytes_either_decode_or_raise_a_decode_error(raw: bytes) -> None:
    try:
        decode_telemetry_message(raw)
    except DecodeError as exc:
        assert exc.reason in {"not_utf8", "not_json", "non_finite_number", "not_object"}


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_json_value_either_decodes_or_raises_a_decode_error(value: object) -> None:
    """Huge integers, NaN, nesting: nothing escapes as anything but a DecodeError."""
    raw = json.dumps(value).encode()  # NaN and Infinity come out as bare literals
    try:
        decode_telemetry_message(raw)
    except DecodeError as exc:
        assert exc.reason


def _both(raw: bytes) -> tuple[object, object]:
    """What the detector's hot path and the plain decoder make of the same bytes."""
    fast: list[object] = []
    try:
        decode_telemetry_into(raw, fast)
        fast_result: object = fast
    except DecodeError as exc:
        fast_result = exc.reason
    try:
        slow_result: object = decode_telemetry_message(raw)
    except DecodeError as exc:
        slow_result = exc.reason
    return fast_result, slow_result


MESSAGE_PARTS = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False)
        | st.sampled_from(["2026-11-22T08:00:00Z", "yesterday", ""])
        | st.just(1_763_800_000_000),
        "device_id": st.text(max_size=5) | st.integers() | st.none(),
        "metric": st.text(max_size=5) | st.booleans(),
        "value": st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=3),
        "labels": st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers())
        | st.none(),
        "event": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    },
)


@given(MESSAGE_PARTS)
def test_the_hot_path_and_the_plain_decoder_agree_on_every_message(
    message: dict[str, object],
) -> None:
    fast, slow = _both(json.dumps(message).encode())
    assert fast == slow


@given(st.binary(max_size=256))
def test_the_hot_path_and_the_plain_decoder_agree_on_any_bytes(raw: bytes) -> None:
    fast, slow = _both(raw)
    assert fast == slow


def test_invalid_utf8_inside_a_string_takes_the_exact_reason_path() -> None:
    raw = b'{"ts": 1763800000000, "device_id": "\xff\xfe", "metric": "m", "value": 1}'
    assert _both(raw) == ("not_utf8", "not_utf8")


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [
        (int(MIN_TS) * 1000 - 1, False),
        (int(MIN_TS) * 1000, True),
        (int(MAX_TS) * 1000 - 1, True),
        (int(MAX_TS) * 1000, False),
    ],
)
def test_the_hot_path_and_the_plain_decoder_agree_at_the_edges_of_the_time_range(
    ts: int, accepted: bool
) -> None:
    fast, slow = _both(encode(ts=ts))
    assert fast == slow
    assert isinstance(fast, list) is accepted


WELL_FORMED = st.fixed_dictionaries(
    {
        "ts": st.integers(int(MIN_TS) * 1000 - 10, int(MAX_TS) * 1000 + 10),
        "device_id": st.text(min_size=1, max_size=5),
        "metric": st.text(min_size=1, max_size=5),
        "value": st.booleans() | st.integers(-(2**80), 2**80) | st.floats(),
    },
    optional={
        "labels": st.dictionaries(st.text(max_size=3), st.text(max_size=3)) | st.none(),
        "other": st.integers() | st.text(max_size=3),
    },
)


@given(WELL_FORMED)
def test_the_hot_path_and_the_plain_decoder_agree_on_messages_that_nearly_all_decode(
    message: dict[str, object],
) -> None:
    fast, slow = _both(json.dumps(message).encode())
    assert fast == slow


def test_readings_stay_out_of_the_garbage_collector() -> None:
    """A batch's readings live until the engine has them: the collector need not walk them."""
    readings: list[Telemetry] = []
    decode_telemetry_into(encode(labels={"node": "node-17"}), readings)
    readings += decode_telemetry_message(encode(ts="2026-11-22T07:00:00Z"))
    assert len(readings) == 2
    assert not any(gc.is_tracked(reading) for reading in readings)


def test_an_integer_beyond_64_bits_that_fits_a_double_decodes_on_both_paths() -> None:
    # orjson refuses it; it is valid JSON and a valid value all the same.
    raw = b'{"ts": 1795000000000, "device_id": "d", "metric": "m", "value": 10000000000000000000}'
    into: list[Telemetry] = []
    decode_telemetry_into(raw, into)
    assert into == [decode_one(raw)]
    assert into[0].value == 1e19


@pytest.mark.parametrize("digits", [310, 400, 5000])
def test_an_integer_too_large_for_a_double_is_a_non_finite_number(digits: int) -> None:
    raw = b'{"ts": 1795000000000, "device_id": "d", "metric": "m", "value": ' + b"9" * digits
    with pytest.raises(DecodeError) as caught:
        decode_one(raw + b"}")
    assert caught.value.reason == "non_finite_number"


def test_a_lone_surrogate_escape_stays_refused_when_orjson_hands_over() -> None:
    # A big integer sends the message past orjson; the escape is still no text.
    raw = rb'{"ts": 1795000000000, "device_id": "\ud800", "metric": "m", "value": 1e0, "n": '
    with pytest.raises(DecodeError) as caught:
        decode_one(raw + b"10000000000000000000}")
    assert caught.value.reason == "not_json"


def test_a_batch_decodes_in_order_and_names_each_failure_by_its_position() -> None:
    from app.detection.decode import decode_telemetry_batch

    values = [encode(device_id="a"), b"{not json", None, encode(device_id="b"), encode(ts="x")]
    out: list[Telemetry] = []
    failures = decode_telemetry_batch(values, out)
    assert [r.device_id for r in out] == ["a", "b"]
    assert [(i, e.reason) for i, e in failures if isinstance(e, DecodeError)] == [
        (1, "not_json"),
        (2, "empty"),
        (4, "bad_timestamp"),
    ]
    assert len(failures) == 3


def test_an_unexpected_decoder_exception_is_dead_lettered_as_internal_error() -> None:
    error = dead_letter_error(RecursionError("deep"))
    assert (error.reason, error.detail) == ("internal_error", "RecursionError")
    known = DecodeError("not_json", "the message is not valid JSON")
    assert dead_letter_error(known) is known
