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


# Baselines grey, Forewarn blue, the peer orange.
COLORS = {"baseline": "#8a8a8a", "forewarn": "#0b5fff", "peer": "#f28e2b"}


def _bars(
    name: str, title: str, labels: list[str], values: list[float], unit: str, kinds: list[str]
) -> None:
    figure, axes = plt.subplots(figsize=(6.6, 3.4))
    bars = axes.bar(labels, values, color=[COLORS[kind] for kind in kinds])
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
            f"Detector vs raw consume, same broker\n(median ratio of "
            f"{len(detector.get('rounds', [None]))} rounds: {detector['ratio']})",
            ["raw aiokafka\nconsume+decode", "Forewarn\ndetector"],
            [detector["raw_msgs_per_s"], detector["detector_msgs_per_s"]],
            "messages/s",
            ["baseline", "forewarn"],
        )
    if peer := _load("peer"):
        keys = [
            ("raw", "aiokafka\nraw", "baseline"),
            ("forewarn", "Forewarn", "forewarn"),
            ("peer_client_raw", "confluent-kafka\nraw (Quix's client)", "baseline"),
            ("peer", "Quix Streams", "peer"),
        ]
        present = [key for key in keys if isinstance(peer.get(key[0]), int | float)]
        _bars(
            "peer",
            "Same ratio_down rule, same topic, same run",
            [label for _, label, _ in present],
            [float(peer[k]) for k, _, _ in present],
            "messages/s",
            [kind for _, _, kind in present],
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
            ["forewarn"],
        )


if __name__ == "__main__":
    main()
