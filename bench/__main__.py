"""`make bench`: every benchmark, figures printed and written to bench/results/."""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from bench.detector import run_throughput
from bench.fanout import run_fanout
from bench.latency import run_latency
from bench.peer import run_peer
from bench.scaling import run_scaling


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", choices=["throughput", "latency", "fanout", "scaling", "peer"], default=None
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="throughput: rounds (median)")
    parser.add_argument("--rates", default="2000,20000", help="latency: msgs/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="latency: seconds per rate")
    parser.add_argument("--customers", type=int, default=100_000, help="fan-out: customers")
    parser.add_argument(
        "--database-url",
        default=None,
        help="latency and fan-out: an empty, migrated database (default a temporary SQLite)",
    )
    parser.add_argument("--peer-messages", type=int, default=1_000_000, help="peer: messages")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    machine = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.only in (None, "throughput"):
        figures = run_throughput(args.messages, args.devices, args.rounds)
        (args.out / "detector.json").write_text(json.dumps({**machine, **figures}, indent=2) + "\n")
    if args.only in (None, "latency"):
        rates = tuple(int(r) for r in args.rates.split(","))
        rows = run_latency(rates, args.seconds, args.devices, args.database_url)
        (args.out / "latency.json").write_text(
            json.dumps({**machine, "runs": rows}, indent=2) + "\n"
        )
    if args.only in (None, "scaling"):
        scaling = run_scaling()
        (args.out / "scaling.json").write_text(
            json.dumps({**machine, "runs": scaling}, indent=2) + "\n"
        )
    if args.only in (None, "fanout"):
        fanout = run_fanout(args.customers, args.database_url)
        (args.out / "fanout.json").write_text(json.dumps({**machine, **fanout}, indent=2) + "\n")
    if args.only in (None, "peer"):
        peer = run_peer(args.peer_messages, args.devices)  # None: quixstreams is not installed
        if peer is not None:
            (args.out / "peer.json").write_text(json.dumps({**machine, **peer}, indent=2) + "\n")


main()
