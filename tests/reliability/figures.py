"""The suite's size knob and the figures each test reports.

`FOREWARN_RELIABILITY_SCALE` (default 1, what `make test` runs; `make reliability` uses 5)
multiplies customers, examples and corpus sizes; `FOREWARN_RELIABILITY_LOAD_SECONDS` (60;
`make reliability`: 600) and `FOREWARN_RELIABILITY_LOAD_RATE` (2,000 messages a second) size
the sustained-load test; `FOREWARN_RELIABILITY_STORM_CUSTOMERS` sets the storm's customers per
node (`make reliability`: 2,500, for tens of thousands of notices).

Every test records its figures with `record`: they are printed, shown in the terminal summary
whatever the capture mode, and merged by test name into `bench/results/reliability.json`.
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
LOAD_SECONDS_VARIABLE = "FOREWARN_RELIABILITY_LOAD_SECONDS"
LOAD_RATE_VARIABLE = "FOREWARN_RELIABILITY_LOAD_RATE"
STORM_CUSTOMERS_VARIABLE = "FOREWARN_RELIABILITY_STORM_CUSTOMERS"

# Figures recorded in this session, for the terminal summary (see conftest.py).
SESSION: dict[str, dict[str, Any]] = {}


def _positive(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{variable} must be a positive integer, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{variable} must be a positive integer, not {raw!r}")
    return value


def scale() -> int:
    """The size knob: a positive integer, 1 unless `FOREWARN_RELIABILITY_SCALE` says more."""
    return _positive(SCALE_VARIABLE, 1)


def storm_customers_per_node() -> int:
    """Customers per node in the storm: 40 × scale (one per modem) unless
    `FOREWARN_RELIABILITY_STORM_CUSTOMERS` asks for more (`make reliability`: 2,500)."""
    return max(_positive(STORM_CUSTOMERS_VARIABLE, 40 * scale()), 40 * scale())


def load_seconds() -> int:
    """How long the sustained-load test runs: 60 s unless `..._LOAD_SECONDS` says otherwise."""
    return _positive(LOAD_SECONDS_VARIABLE, 60)


def load_rate() -> int:
    """Telemetry messages a second in the sustained-load test: 2,000 unless `..._LOAD_RATE`."""
    return _positive(LOAD_RATE_VARIABLE, 2000)


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
