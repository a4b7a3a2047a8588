"""How the detector's cost grows with the network: events/s and memory at 10k..1M devices.

Each size runs in its own process (so peak memory is its own): the topology for N devices on
nodes of 50, one `ratio_down` rule, then two rounds of readings from every device decoded from
JSON and fed to the engine in batches of 5,000. Rate = readings/s of decode + engine (no Kafka,
no database: the throughput benchmark measures those); memory = resident set growth from
before the topology was built to after the second round, i.e. what tracking N devices costs.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import orjson

from app.detection.decode import decode_telemetry_into
from app.detection.engine import DetectionEngine
from app.detection.telemetry import Telemetry
from app.domain.topology import Topology
from app.rules.schemas import RatioDownRule, to_spec

PER_NODE = 50
BATCH = 5000


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(devices: int) -> dict[str, float]:
    before = _rss_mib()
    topology = Topology(
        device_node={f"d{d}": f"n{d // PER_NODE}" for d in range(devices)},
        parent={f"n{n}": "h0" for n in range(devices // PER_NODE + 1)},
    )
    rule = RatioDownRule.model_validate(
        {
            "name": "down",
            "kind": "ratio_down",
            "metric": "cpe.online",
            "threshold": 0.3,
            "clear_threshold": 0.1,
            "min_devices": 5,
        }
    )
    engine = DetectionEngine([to_spec(1, 1, rule)], topology)
    base = 1_800_000_000_000
    fed = 0
    elapsed = 0.0
    for round_ in range(2):
        for start in range(0, devices, BATCH):
            raw = [
                orjson.dumps(
                    {
                        "ts": base + round_ * 60_000 + d,
                        "device_id": f"d{d}",
                        "metric": "cpe.online",
                        "value": 1,
                    }
                )
                for d in range(start, min(devices, start + BATCH))
            ]
            began = time.perf_counter()
            events: list[Telemetry] = []
            for message in raw:
                decode_telemetry_into(message, events)
            engine.feed(events)
            elapsed += time.perf_counter() - began
            fed += len(raw)
    after = _rss_mib()
    return {
        "devices": devices,
        "readings_per_s": round(fed / elapsed),
        "rss_growth_mib": round(after - before, 1),
        "bytes_per_device": round((after - before) * 2**20 / devices),
        "tracked_scopes": engine.tracked_scopes(),
    }


def run_scaling(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> list[dict[str, float]]:
    """Measure each size in a fresh process."""
    rows = []
    for size in sizes:
        out = subprocess.run(  # noqa: S603 - this module, in a fresh interpreter
            [sys.executable, "-m", "bench.scaling", str(size)],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1])  # noqa: T201 - the benchmark's output
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))  # noqa: T201 - read by run_scaling
