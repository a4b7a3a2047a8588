"""Durations as NOC engineers write them: `30s`, `5m`, `2h`, `1d`, `1m30s`."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text; raise ValueError with a reason on anything else."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError("is empty; write a duration such as 30s, 5m or 1h")
    position = 0
    seconds = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(cleaned):
        raise ValueError(f"{text!r} is not a duration; write one such as 30s, 5m, 1h30m or 1d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Format a duration back into the shortest `1h30m`-style text."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    if total != int(total):
        return f"{int(round(total * 1000))}ms"
    remaining = int(total)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
