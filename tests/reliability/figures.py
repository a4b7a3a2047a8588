"""The suite's size knob and the figures each test reports.

`FOREWARN_RELIABILITY_SCALE` (default 1, what `make test` runs; `make reliability` uses 5)
multiplies customers, examples and corpus sizes. Every test records its figures with `record`:
they are printed, shown in the terminal summary whatever the capture mode, and merged by test
name into `bench/results/reliability.json`.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"
SCALE_VARIABLE = "FOREWARN_RELIABILITY_SCALE"

# Figures recorded in this session, for the terminal summary (see conftest.py).
SESSION: dict[str, dict[str, Any]] = {}


def scale() -> int:
    """The size knob: a positive integer, 1 unless `FOREWARN_RELIABILITY_SCALE` says more."""
    raw = os.environ.get(SCALE_VARIABLE, "1").strip() or "1"
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{SCALE_VARIABLE} must be a positive integer, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{SCALE_VARIABLE} must be a positive integer, not {raw!r}")
    return value


def record(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print `figures` and merge them under `name` into bench/results/reliability.json."""
    entry = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale(),
        "python": platform.python_version(),
        **figures,
    }
    SESSION[name] = entry
    print(f"\n[reliability] {name}: {json.dumps(entry, sort_keys=True)}")  # noqa: T201
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    except (OSError, ValueError):
        merged = {}
    if not isinstance(merged, dict):
        merged = {}
    merged[name] = entry
    temporary = RESULTS.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    temporary.replace(RESULTS)
    return entry
