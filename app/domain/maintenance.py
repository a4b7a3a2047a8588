"""Planned work, as detection and notices see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned work on a place (and everything under it) from `start` to `end` (epoch s)."""

    scope_id: str
    start: float
    end: float
