"""Detection latency under load: from the event that makes a rule true to the outage row.

A paced producer streams telemetry at a fixed rate while the real `Detector` runs. Faults
start on one node after another; the producer notes the wall time at which it sent, for each
(rule, node), the report that tips the rule (the 4th modem of 10 down, ratio 0.4 > 0.3).
The detector's `on_event` hook notes when the outage was opened, persisted and published.
Latency = published − tipping report sent, so it includes the broker round trip, decoding,
the engine, the database commit and the publish.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import Progress

from app.db import create_engine, session_factory
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.settings import Settings
from bench.detector import METRICS, PER_NODE, seed_database
from consumers.broker import EmbeddedBroker, ensure_topics
from consumers.telemetry import Detector

console = Console()
TIP = 4  # down reports among a node's 10 modems of one metric that make 0.4 > 0.3


@dataclass
class Run:
    rate: int
    seconds: float
    devices: int
    tipped: dict[tuple[str, str], float] = field(default_factory=dict)
    opened: dict[tuple[str, str], float] = field(default_factory=dict)
    sent: int = 0


async def stream(producer: AIOKafkaProducer, topic: str, run: Run, stop: asyncio.Event) -> None:
    """Send `run.rate` reports a second; from second 5, one more node fails every 0.25 s."""
    nodes = run.devices // PER_NODE
    down_count: dict[tuple[str, str], int] = {}
    started = time.monotonic()
    fault_every, fault_from = 0.25, 5.0
    device = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"streaming at {run.rate:,}/s", total=run.seconds)
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if elapsed >= run.seconds:
                break
            due = int(elapsed * run.rate) - run.sent
            if due <= 0:
                await asyncio.sleep(0.002)
                continue
            failed_nodes = max(0, min(nodes, int((elapsed - fault_from) / fault_every) + 1))
            if elapsed < fault_from:
                failed_nodes = 0
            for _ in range(min(due, 2000)):
                node = device // PER_NODE
                metric = METRICS[device % len(METRICS)]
                down = node < failed_nodes
                now_ms = int(time.time() * 1000)
                payload = orjson.dumps(
                    {
                        "ts": now_ms,
                        "device_id": f"d{device}",
                        "metric": metric,
                        "value": 0 if down else 1,
                    }
                )
                await producer.send(topic, payload, key=f"n{node}".encode())
                if down:
                    key = (f"down-{metric}", f"n{node}")
                    count = down_count.get(key, 0) + 1
                    down_count[key] = count
                    if count == TIP:
                        run.tipped[key] = time.time()
                run.sent += 1
                device = (device + 1) % run.devices
            progress.update(task, completed=elapsed)
    await producer.flush()


async def measure(rate: int, seconds: float, devices: int, database_url: str | None = None) -> Run:
    """One run; `database_url` (an empty database) or a temporary SQLite file."""
    run = Run(rate=rate, seconds=seconds, devices=devices)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            database_url=database_url or f"sqlite+aiosqlite:///{tmp}/latency.db",
            topic_prefix="lat.",
            log_level="warning",
            kafka_session_timeout_ms=6000,
        )
        await ensure_topics(
            broker.bootstrap_servers,
            [
                settings.topic(t)
                for t in ("telemetry", "contacts", "outage-events", "telemetry.dlq")
            ],
            1,
        )
        await seed_database(settings.database_url, devices)

        def on_event(event: OutageEvent) -> None:
            if event.state is OutageState.OPEN:
                run.opened.setdefault((event.rule_name, event.scope_id), time.time())

        engine = create_engine(settings.database_url)
        detector = Detector(settings=settings, sessions=session_factory(engine), on_event=on_event)
        stop = asyncio.Event()
        detecting = asyncio.create_task(detector.run(stop))
        while not detector.assigned:  # noqa: ASYNC110 - the clock starts once it has joined
            await asyncio.sleep(0.1)
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, linger_ms=5, max_batch_size=256_000
        )
        await producer.start()
        try:
            await stream(producer, settings.topic("telemetry"), run, stop)
            deadline = time.monotonic() + 30
            while set(run.tipped) - set(run.opened) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls two dicts
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await producer.stop()
            await detecting
            await engine.dispose()
    return run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(run: Run) -> dict[str, float]:
    latencies = [run.opened[k] - t for k, t in run.tipped.items() if k in run.opened]
    missed = len(run.tipped) - len(latencies)
    return {
        "rate_msgs_per_s": run.rate,
        "outages": len(latencies),
        "missed": missed,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1) if latencies else float("nan"),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if latencies else float("nan"),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else float("nan"),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else float("nan"),
    }


def run_latency(
    rates: tuple[int, ...], seconds: float, devices: int, database_url: str | None = None
) -> list[dict[str, float]]:
    """Measure at each rate; print and return one row per rate."""
    if database_url and len(rates) > 1:
        raise SystemExit("with --database-url, one rate per run: each needs an empty database")
    rows = []
    for rate in rates:
        console.print(
            f"detection latency at {rate:,} msgs/s for {seconds:.0f} s ({devices:,} devices)"
        )
        rows.append(summarise(asyncio.run(measure(rate, seconds, devices, database_url))))
        console.print(rows[-1])
    return rows
