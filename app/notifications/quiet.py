"""Quiet hours: when a customer does not want non-urgent notices, in their own time zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _clock(text: str) -> time:
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes))


def quiet_until(
    now: datetime, timezone: str, quiet_hours: dict[str, str] | None
) -> datetime | None:
    """Return when the quiet period `now` falls in ends (aware UTC), or None when not quiet.

    `quiet_hours` is `{"start": "22:00", "end": "07:00"}` in local time; it may span midnight.
    """
    if not quiet_hours:
        return None
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    start, end = _clock(quiet_hours["start"]), _clock(quiet_hours["end"])
    if start == end:
        return None
    local = now.astimezone(zone)
    today = local.date()
    at = local.time()
    if start < end:  # e.g. 13:00-15:00, within one day
        if not start <= at < end:
            return None
        ends = datetime.combine(today, end, zone)
    elif at >= start:  # e.g. 22:00-07:00, in the evening part
        ends = datetime.combine(today + timedelta(days=1), end, zone)
    elif at < end:  # ... in the morning part
        ends = datetime.combine(today, end, zone)
    else:
        return None
    return ends.astimezone(now.tzinfo)
