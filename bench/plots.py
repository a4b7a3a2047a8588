"""Draw the benchmark figures in bench/results/*.json as PNGs for docs/benchmarks.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

RESULTS = Path("bench/results")
IMAGES = Path("docs/img")


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _bars(name: str, title: str, labels: list[str], values: list[float], unit: str) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.2))
    bars = axes.bar(labels, values, color=["#8a8a8a", "#0b5fff", "#f28e2b"][: len(values)])
    axes.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
    axes.set_title(title)
    axes.set_ylabel(unit)
    figure.tight_layout()
    figure.savefig(IMAGES / f"{name}.png", dpi=110)
    plt.close(figure)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    if detector := _load("detector"):
        _bars(
            "throughput",
            f"Detector vs raw consume, same broker (ratio {detector['ratio']})",
            ["raw aiokafka\nconsume+decode", "Forewarn\ndetector"],
            [detector["raw_msgs_per_s"], detector["detector_msgs_per_s"]],
            "messages/s",
        )
    if peer := _load("peer"):
        keys = [("raw", "raw"), ("forewarn", "Forewarn"), ("peer", "Quix Streams")]
        present = [(k, label) for k, label in keys if isinstance(peer.get(k), int | float)]
        _bars(
            "peer",
            "Same ratio_down rule, same topic, same run",
            [label for _, label in present],
            [float(peer[k]) for k, _ in present],
            "messages/s",
        )
    if latency := _load("latency"):
        runs = latency["runs"]
        figure, axes = plt.subplots(figsize=(6, 3.2))
        rates = [f"{r['rate_msgs_per_s']:,}/s" for r in runs]
        axes.plot(rates, [r["p50_ms"] for r in runs], marker="o", label="p50")
        axes.plot(rates, [r["p99_ms"] for r in runs], marker="o", label="p99")
        axes.set_title("Detection latency: tipping reading sent → outage published")
        axes.set_xlabel("telemetry rate")
        axes.set_ylabel("ms")
        axes.legend()
        figure.tight_layout()
        figure.savefig(IMAGES / "latency.png", dpi=110)
        plt.close(figure)
    if scaling := _load("scaling"):
        runs = scaling["runs"]
        figure, left = plt.subplots(figsize=(6, 3.2))
        sizes = [f"{r['devices']:,}" for r in runs]
        left.bar(sizes, [r["readings_per_s"] for r in runs], color="#0b5fff")
        left.set_ylabel("readings/s (decode + engine)")
        right = left.twinx()
        right.plot(sizes, [r["rss_growth_mib"] for r in runs], color="#f28e2b", marker="o")
        right.set_ylabel("memory growth (MiB)")
        left.set_title("Cost as the network grows")
        left.set_xlabel("devices tracked")
        figure.tight_layout()
        figure.savefig(IMAGES / "scaling.png", dpi=110)
        plt.close(figure)
    if fanout := _load("fanout"):
        _bars(
            "fanout",
            f"{fanout['customers']:,}-customer outage: SMS per second, one dispatcher",
            ["SMS/s"],
            [fanout["sms_per_s_per_process"]],
            "SMS/s",
        )


if __name__ == "__main__":
    main()
