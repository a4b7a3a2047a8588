"""A reading dated past the detector's bound (its clock plus the allowed skew) is refused with
`future_timestamp`, whole and on every path; without a bound (a replay) any time up to 2100 is
taken."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.detection.decode import (
    MAX_TS,
    MIN_TS,
    decode_contact,
    decode_telemetry_batch,
    decode_telemetry_into,
    decode_telemetry_message,
)
from app.detection.exceptions import DecodeError
from app.detection.telemetry import Telemetry
from app.settings import Settings

NOW = 1_795_330_800.0  # 2026-11-22T07:00:00Z, the detector's clock
LATEST = NOW + 300.0  # plus the default skew
DAY = 86_400.0


def reading(ts: object, device_id: str = "cpe-1") -> bytes:
    return orjson.dumps({"ts": ts, "device_id": device_id, "metric": "cpe.online", "value": 1})


def ves_batch(*seconds: float) -> bytes:
    events = [
        {
            "commonEventHeader": {
                "domain": "heartbeat",
                "sourceName": f"olt-{i}",
                "lastEpochMicrosec": int(ts * 1_000_000),
            }
        }
        for i, ts in enumerate(seconds)
    ]
    return orjson.dumps({"eventList": events})


def reasons(raw: bytes, latest_ts: float) -> tuple[object, object]:
    """What the hot path and the plain decoder make of `raw` under the bound."""
    fast: list[Telemetry] = []
    try:
        decode_telemetry_into(raw, fast, latest_ts=latest_ts)
        fast_result: object = [r.ts for r in fast]
    except DecodeError as exc:
        fast_result = exc.reason
    try:
        slow_result: object = [r.ts for r in decode_telemetry_message(raw, latest_ts=latest_ts)]
    except DecodeError as exc:
        slow_result = exc.reason
    return fast_result, slow_result


@pytest.mark.parametrize(
    "ts",
    [
        int((NOW + DAY) * 1000),  # epoch milliseconds: the hot path's case
        "2026-11-23T07:00:00Z",  # RFC 3339: the slow path's
        int(LATEST * 1000) + 1,  # a millisecond past the bound
    ],
)
def test_a_reading_dated_past_the_bound_is_refused_as_future_timestamp_on_both_paths(
    ts: object,
) -> None:
    assert reasons(reading(ts), LATEST) == ("future_timestamp", "future_timestamp")


@pytest.mark.parametrize(
    "ts",
    [
        int(NOW * 1000),
        int((NOW + 299) * 1000),  # within the skew
        int(LATEST * 1000),  # exactly at the bound
        "2026-11-22T07:04:59+00:00",
    ],
)
def test_a_reading_within_the_skew_is_accepted_on_both_paths(ts: object) -> None:
    fast, slow = reasons(reading(ts), LATEST)
    assert fast == slow
    assert isinstance(fast, list) and len(fast) == 1


def test_without_a_bound_a_day_ahead_is_taken_and_2100_still_is_not() -> None:
    """A replay (backtest, recorded telemetry) passes no bound: history may lie anywhere."""
    day_ahead = reading(int((NOW + DAY) * 1000))
    assert reasons(day_ahead, MAX_TS) == ([NOW + DAY], [NOW + DAY])
    assert decode_telemetry_message(day_ahead)[0].ts == NOW + DAY
    assert reasons(reading(int(MAX_TS) * 1000), MAX_TS) == ("bad_timestamp", "bad_timestamp")
    with pytest.raises(DecodeError) as caught:
        decode_telemetry_message(day_ahead, latest_ts=LATEST)
    assert caught.value.reason == "future_timestamp"
    assert "past the wall clock plus the allowed clock skew" in caught.value.detail


def test_a_broken_message_keeps_its_own_reason_whatever_its_date() -> None:
    no_device = orjson.dumps({"ts": int((NOW + DAY) * 1000), "metric": "m", "value": 1})
    assert reasons(no_device, LATEST) == ("missing_field", "missing_field")
    assert reasons(reading(int(MAX_TS) * 1000), LATEST) == ("bad_timestamp", "bad_timestamp")


def test_a_batch_names_the_future_message_by_its_position_and_keeps_the_rest() -> None:
    values = [
        reading(int(NOW * 1000), "a"),
        reading(int((NOW + DAY) * 1000), "ahead"),
        reading(int(NOW * 1000) + 1, "b"),
    ]
    out: list[Telemetry] = []
    failures = decode_telemetry_batch(values, out, latest_ts=LATEST)
    assert [r.device_id for r in out] == ["a", "b"]
    assert [(i, e.reason) for i, e in failures if isinstance(e, DecodeError)] == [
        (1, "future_timestamp")
    ]
    assert len(failures) == 1


def test_a_ves_batch_with_one_future_event_is_refused_whole() -> None:
    out: list[Telemetry] = []
    failures = decode_telemetry_batch(
        [ves_batch(NOW, NOW + DAY, NOW), ves_batch(NOW, NOW + 1)], out, latest_ts=LATEST
    )
    assert [(i, e.reason) for i, e in failures if isinstance(e, DecodeError)] == [
        (0, "future_timestamp")
    ]
    assert [r.device_id for r in out] == ["olt-0", "olt-1"]  # the second message only
    with pytest.raises(DecodeError) as caught:
        decode_telemetry_message(ves_batch(NOW, NOW + DAY), latest_ts=LATEST)
    assert caught.value.reason == "future_timestamp"


def test_a_contact_dated_past_the_bound_is_refused_as_future_timestamp() -> None:
    def contact(ts: object) -> bytes:
        return orjson.dumps({"ts": ts, "customer_id": "c-1", "channel": "call"})

    assert decode_contact(contact(int(LATEST * 1000)), latest_ts=LATEST).ts == LATEST
    assert decode_contact(contact(int((NOW + DAY) * 1000))).ts == NOW + DAY  # no bound
    with pytest.raises(DecodeError) as caught:
        decode_contact(contact("2026-11-23T07:00:00Z"), latest_ts=LATEST)
    assert caught.value.reason == "future_timestamp"


WELL_FORMED = st.fixed_dictionaries(
    {
        "ts": st.integers(int(MIN_TS) * 1000 - 10, int(MAX_TS) * 1000 + 10)
        | st.integers(int(LATEST * 1000) - 5, int(LATEST * 1000) + 5),
        "device_id": st.text(min_size=1, max_size=5),
        "metric": st.text(min_size=1, max_size=5),
        "value": st.booleans() | st.integers(-(2**80), 2**80) | st.floats(),
    },
    optional={"labels": st.dictionaries(st.text(max_size=3), st.text(max_size=3)) | st.none()},
)


@given(WELL_FORMED)
def test_the_hot_path_and_the_plain_decoder_agree_under_a_bound(message: dict[str, Any]) -> None:
    fast, slow = reasons(json.dumps(message).encode(), LATEST)
    assert fast == slow


def test_the_skew_setting_defaults_to_five_minutes_and_refuses_a_negative_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().max_clock_skew_seconds == 300.0
    monkeypatch.setenv("FOREWARN_MAX_CLOCK_SKEW_SECONDS", "30")
    assert Settings().max_clock_skew_seconds == 30.0
    monkeypatch.setenv("FOREWARN_MAX_CLOCK_SKEW_SECONDS", "-1")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [e["loc"][0] for e in caught.value.errors()] == ["max_clock_skew_seconds"]
