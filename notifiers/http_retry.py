"""What an HTTP provider's answer says about when to try again."""

from __future__ import annotations

import math


def retry_after_seconds(raw: str | None) -> float | None:
    """Parse a Retry-After header given in seconds; ignore anything else."""
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None
