"""Decode telemetry messages (contract v1) into engine events, or say exactly why not.

The happy path is one `orjson.loads` and a few type checks; the slower classification of a
bad message (invalid UTF-8, NaN, a number too large for a float) only runs on the error path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson

from app.detection.exceptions import DecodeError
from app.detection.telemetry import Telemetry
from app.detection.ves import is_ves, ves_events
from app.domain.contacts import Contact

MAX_MESSAGE_BYTES = 1024 * 1024
# Event times outside 2000-01-01 .. 2100-01-01 are a broken clock or a wrong unit, not data.
MIN_TS = 946_684_800.0
MAX_TS = 4_102_444_800.0


def _load_object(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise DecodeError("empty", "the message has no value")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError("too_large", f"{len(raw)} bytes is over the 1 MiB limit")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = _load_beyond_orjson(raw)
    if type(data) is not dict:
        raise DecodeError(
            "not_object", f"the message is a JSON {type(data).__name__}, not an object"
        )
    return data


_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
# `ts` in epoch milliseconds inside 2000-2100: for an integer, `MIN_TS <= ts / 1000.0 < MAX_TS`
# holds exactly when these bounds do (the division is correctly rounded and monotonic).
_EpochMs = Annotated[int, msgspec.Meta(ge=int(MIN_TS) * 1000, lt=int(MAX_TS) * 1000)]


class _V1(msgspec.Struct, gc=False):
    """Contract v1 as msgspec checks it in C; anything it cannot take goes the slow path.

    Every check of the contract that msgspec can make is a type or a constraint here (a
    float field takes integers, and refuses one beyond a double), so the fast path in Python
    only has to look for VES and for an infinite value.
    """

    ts: _EpochMs
    device_id: _NonEmpty
    metric: _NonEmpty
    value: float | bool
    labels: dict[str, str] | None = None
    event: msgspec.Raw | None = None  # VES: present means "not v1"
    eventList: msgspec.Raw | None = None  # noqa: N815 - the VES field's name


_V1_DECODE = msgspec.json.Decoder(_V1).decode


def decode_telemetry_into(
    raw: bytes | None, out: list[Telemetry], *, latest_ts: float = MAX_TS
) -> None:
    """Decode a message (contract v1 or VES) and append its readings to `out`."""
    for _, error in decode_telemetry_batch((raw,), out, latest_ts=latest_ts):
        raise error


def decode_telemetry_batch(
    values: Sequence[bytes | None], out: list[Telemetry], *, latest_ts: float = MAX_TS
) -> list[tuple[int, Exception]]:
    """Decode messages (contract v1 or VES), appending their readings to `out` (the hot path);
    return the position and the error of each that failed: a `DecodeError` naming what is
    wrong, or any other exception (a decoder bug, which the caller dead-letters too).

    A message with a reading dated after `latest_ts` (epoch seconds; the detector passes its
    wall clock plus the allowed skew, a replay of history passes nothing) fails whole with
    `future_timestamp`, a VES batch included: none of its readings is appended.

    A well-formed v1 message is checked by msgspec in one C pass; any other message (VES, or
    one that is wrong somewhere, or dated too late) takes the slow path, which names exactly
    what is wrong. One call per batch, not per message: the loop's names are bound once.
    """
    failures: list[tuple[int, Exception]] = []
    decode_v1, append, isfinite = _V1_DECODE, out.append, math.isfinite
    for index, raw in enumerate(values):
        if raw is not None and len(raw) <= MAX_MESSAGE_BYTES:
            try:
                message = decode_v1(raw)
            except (ValueError, RecursionError):  # the slow path says why
                pass
            else:
                value = message.value
                ts = message.ts / 1000.0
                if (
                    message.event is None
                    and message.eventList is None
                    and isfinite(value)
                    and ts <= latest_ts
                    # msgspec skips a field it does not know without checking it is UTF-8
                    and (raw.isascii() or _is_utf8(raw))
                ):
                    append(
                        Telemetry(
                            ts,
                            message.device_id,
                            message.metric,
                            float(value),  # a bool is 1.0 or 0.0
                            message.labels,
                        )
                    )
                    continue
        try:
            data = _load_object(raw)
            if "event" in data or "eventList" in data:
                out.extend(_not_after(_ves(data), latest_ts))
            else:
                event = _to_event(data)
                if event.ts > latest_ts:
                    raise _future(event.ts, latest_ts)
                append(event)
        except Exception as exc:  # noqa: BLE001 - reported per message, never lost
            failures.append((index, exc))
    return failures


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_telemetry_message(raw: bytes | None, *, latest_ts: float = MAX_TS) -> list[Telemetry]:
    """Decode a message that is either contract v1 or an ONAP VES event (or batch); one
    with a reading dated after `latest_ts` fails whole with `future_timestamp`."""
    data = _load_object(raw)
    if not is_ves(data):
        return _not_after([_to_event(data)], latest_ts)
    return _not_after(_ves(data), latest_ts)


def _not_after(events: list[Telemetry], latest_ts: float) -> list[Telemetry]:
    """Return `events` if none is dated after `latest_ts`; else raise `future_timestamp`."""
    newest = max((event.ts for event in events), default=latest_ts)
    if newest > latest_ts:
        raise _future(newest, latest_ts)
    return events


def _future(ts: float, latest_ts: float) -> DecodeError:
    return DecodeError(
        "future_timestamp",
        f"ts is {ts - latest_ts:.3f} s past the wall clock plus the allowed clock skew",
    )


def _ves(data: dict[str, Any]) -> list[Telemetry]:
    events = ves_events(data)
    for event in events:
        if not MIN_TS <= event.ts < MAX_TS:
            raise DecodeError("bad_timestamp", "VES lastEpochMicrosec is outside 2000-2100")
    return events


CONTACT_CHANNELS = frozenset({"call", "chat", "ticket", "lookup"})


def decode_contact(raw: bytes | None, *, latest_ts: float = MAX_TS) -> Contact:
    """Decode one message of the `contacts` topic; one dated after `latest_ts` (epoch
    seconds) is refused with `future_timestamp`."""
    data = _load_object(raw)
    if "ts" not in data:
        raise DecodeError("missing_field", "ts is missing")
    customer_id, phone = data.get("customer_id"), data.get("phone")
    if customer_id is None and phone is None:
        raise DecodeError("missing_field", "customer_id or phone is required")
    if customer_id is not None and (type(customer_id) is not str or not customer_id):
        raise _field_error("customer_id", customer_id, "a non-empty string")
    if phone is not None and (type(phone) is not str or not phone):
        raise _field_error("phone", phone, "a non-empty string")
    channel = data.get("channel", "call")
    if type(channel) is not str or channel not in CONTACT_CHANNELS:
        raise DecodeError("bad_type", f"channel must be one of {sorted(CONTACT_CHANNELS)}")
    ts = _timestamp(data["ts"])
    if not MIN_TS <= ts < MAX_TS:
        raise DecodeError("bad_timestamp", "ts is outside 2000-2100 (seconds sent as ms?)")
    if ts > latest_ts:
        raise _future(ts, latest_ts)
    return Contact(ts, customer_id=customer_id, phone=phone, channel=channel)


def _to_event(data: dict[str, Any]) -> Telemetry:
    device_id = data.get("device_id")
    metric = data.get("metric")
    value = data.get("value")
    if "ts" not in data:
        raise DecodeError("missing_field", "ts is missing")
    if type(device_id) is not str or not device_id:
        raise _field_error("device_id", device_id, "a non-empty string")
    if type(metric) is not str or not metric:
        raise _field_error("metric", metric, "a non-empty string")
    if value is None:
        raise DecodeError("missing_field", "value is missing")
    value_type = type(value)
    if value_type is bool:
        number = 1.0 if value else 0.0
    elif value_type is int or value_type is float:
        number = float(value)
        if not math.isfinite(number):
            raise DecodeError("non_finite_number", "value is not a finite number")
    else:
        raise _field_error("value", value, "a number or a boolean")
    labels = data.get("labels")
    if labels is not None:
        if type(labels) is not dict or not all(type(v) is str for v in labels.values()):
            raise DecodeError("bad_type", "labels must be an object of strings")
    raw_ts = data["ts"]
    ts = raw_ts / 1000.0 if type(raw_ts) is int else _timestamp(raw_ts)  # the common case inline
    if not MIN_TS <= ts < MAX_TS:
        raise DecodeError("bad_timestamp", "ts is outside 2000-2100 (seconds sent as ms?)")
    return Telemetry(ts, device_id, metric, number, labels)


def _timestamp(ts: object) -> float:
    """Return epoch seconds from an RFC 3339 string or epoch milliseconds."""
    if type(ts) is int:
        return ts / 1000.0
    if type(ts) is float:
        if not math.isfinite(ts):
            raise DecodeError("bad_timestamp", "ts is not a finite number")
        return ts / 1000.0
    if type(ts) is str:
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            raise DecodeError("bad_timestamp", "ts is not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None:
            raise DecodeError("bad_timestamp", "ts has no UTC offset (RFC 3339 needs one)")
        return parsed.timestamp()
    raise DecodeError("bad_timestamp", "ts must be an RFC 3339 string or epoch milliseconds")


def _field_error(name: str, value: object, expected: str) -> DecodeError:
    if value is None:
        return DecodeError("missing_field", f"{name} is missing")
    return DecodeError("bad_type", f"{name} must be {expected}, not {type(value).__name__}")


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFinite(name)


def _checked_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NonFinite(text)
    return number


def _check_text(data: Any) -> None:
    """Raise ValueError if a string anywhere in `data` is not text (a lone surrogate)."""
    if type(data) is str:
        data.encode("utf-8")  # UnicodeEncodeError is a ValueError
    elif type(data) is dict:
        for key, value in data.items():
            _check_text(key)
            _check_text(value)
    elif type(data) is list:
        for item in data:
            _check_text(item)


def _checked_int(text: str) -> int:
    # No double holds more than 309 integer digits; the check also spares `int()` its limit
    # on very long literals (4,300 digits), which would make them `not_json`.
    if len(text.lstrip("-")) > 309:
        raise _NonFinite(text)
    number = int(text)
    try:
        float(number)
    except OverflowError:
        raise _NonFinite(text) from None
    return number


def _load_beyond_orjson(raw: bytes) -> Any:
    """What orjson refused: say why exactly, or decode it if it is JSON after all.

    orjson refuses integers beyond 64 bits that are valid JSON and fit a double (a value of
    1e19 written out in digits); the standard library takes them. It also takes a lone
    surrogate escape (`"\\ud800"`), which is no text and stays refused as `not_json`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("not_utf8", f"invalid UTF-8 at byte {exc.start}") from None
    try:
        data = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_checked_float,
            parse_int=_checked_int,
        )
        _check_text(data)
        return data
    except _NonFinite:
        raise DecodeError(
            "non_finite_number", "NaN, Infinity and numbers beyond a double are not allowed"
        ) from None
    except (ValueError, RecursionError):
        raise DecodeError("not_json", "the message is not valid JSON") from None
