"""Detector throughput against the raw consume rate of the same broker, in the same run.

1. Produce N telemetry messages from D devices (on D/50 nodes) to a fresh topic.
2. Baseline: an aiokafka consumer built as the detector's is (`consumers.clients`, the same
   settings and the same topics, telemetry and contacts) that reads every message and decodes
   it with `orjson.loads`, committing after every batch. A second baseline reads telemetry only.
3. Forewarn: the real `Detector` (decode -> engine -> persist -> commit) reads the same topic
   with one `ratio_down` rule per metric; one node goes down half-way, so an outage is opened
   and persisted during the run.
The figure that matters is the ratio detector/raw: machines differ, the ratio travels. The
machines are shared, so one rate can be off by a third from one minute to the next: each round
measures a baseline and the detector back to back (in alternating order, each with consumer
groups of its own, the detector with a fresh database), and the figure is the median of the
rounds' ratios.
All rates are steady-state: timed from the first batch, because joining a consumer group on
the embedded broker takes half the session timeout, which is the broker's cost, not ours.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import insert, select

from app.db import create_engine, session_factory, transaction
from app.inventory.models import Device, TopologyNode
from app.migrate import upgrade_to_head
from app.outages.models import Outage
from app.rules.models import Rule, RuleVersion
from app.rules.schemas import RatioDownRule, rule_definition_json
from app.settings import Settings
from consumers.broker import EmbeddedBroker, ensure_topics
from consumers.clients import make_consumer
from consumers.collector import restore, tune_for_batches
from consumers.telemetry import Detector

console = Console()
PER_NODE = 50
METRICS = ("cpe.online", "stb.online", "ont.online", "voice.online", "wifi.online")


async def produce(bootstrap: str, topic: str, messages: int, devices: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256_000)
    await producer.start()
    base = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000
    bad_node = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("producing telemetry", total=messages)
        for i in range(messages):
            device = i % devices
            node = device // PER_NODE
            ts = base + (i // devices) * 10_000
            down = node == bad_node and i > messages // 2
            payload = orjson.dumps(
                {
                    "ts": ts,
                    "device_id": f"d{device}",
                    "metric": METRICS[device % len(METRICS)],
                    "value": 0 if down else 1,
                }
            )
            await producer.send(topic, payload, key=f"n{node}".encode())
            if i % 10_000 == 0:
                progress.update(task, completed=i)
        await producer.flush()
    await producer.stop()


class RoundSettings(Settings):
    """Settings whose consumer groups are one round's own, so every round reads from the start."""

    bench_round: str = ""

    def group(self, name: str) -> str:
        return f"{self.topic_prefix}{self.bench_round}{name}"


async def raw_rate(settings: Settings, topics: list[str], messages: int) -> float:
    """The plain consumer's rate. The detector tunes the garbage collector for batches (see
    consumers/collector.py); the baseline gets the same tuning, so the ratio compares the
    work each does per message, not their collectors."""
    thresholds = tune_for_batches()
    try:
        return await _raw_rate(settings, topics, messages)
    finally:
        restore(thresholds)


async def _raw_rate(settings: Settings, topics: list[str], messages: int) -> float:
    consumer = make_consumer(settings, topics, "bench-raw")
    await consumer.start()
    seen = 0
    started = 0.0
    while seen < messages:
        batch = await consumer.getmany(timeout_ms=1000)
        if batch and not started:
            started = time.perf_counter()  # group join time is the broker's, not the consumer's
        for records in batch.values():
            for record in records:
                orjson.loads(record.value or b"null")
            seen += len(records)
        if batch:
            await consumer.commit()
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return seen / elapsed


async def seed_database(url: str, devices: int) -> None:
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    nodes = devices // PER_NODE
    async with transaction(session_factory(engine)) as session:
        await session.execute(
            insert(TopologyNode),
            [{"id": "r", "level": "region", "parent_id": None}]
            + [{"id": "h", "level": "hub", "parent_id": "r"}]
            + [{"id": f"n{n}", "level": "node", "parent_id": "h"} for n in range(nodes)],
        )
        await session.execute(
            insert(Device),
            [
                {"id": f"d{d}", "node_id": f"n{d // PER_NODE}", "services": []}
                for d in range(devices)
            ],
        )
        for index, metric in enumerate(METRICS, start=1):
            rule = RatioDownRule.model_validate(
                {
                    "name": f"down-{metric}",
                    "kind": "ratio_down",
                    "metric": metric,
                    "threshold": 0.3,
                    "clear_threshold": 0.1,
                    "min_devices": 5,
                    "for": "0s",
                }
            )
            definition = rule_definition_json(rule)
            session.add(
                Rule(
                    id=index,
                    name=rule.name,
                    kind=rule.kind,
                    version=1,
                    enabled=True,
                    definition=definition,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.flush()
            session.add(
                RuleVersion(
                    rule_id=index, version=1, enabled=True, definition=definition, created_at=now
                )
            )
    await engine.dispose()


async def detector_rate(settings: Settings, topic: str, messages: int) -> tuple[float, int]:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    detector = Detector(settings=settings, sessions=sessions, refresh_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(detector.run(stop))
    probe = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.group("forewarn-detector"),
    )
    await probe.start()
    partition = TopicPartition(topic, 0)
    first: tuple[float, int] | None = None  # when the first batch was committed, and its size
    while True:
        committed = await probe.committed(partition)
        if committed and first is None:
            first = (time.perf_counter(), committed)
        if committed is not None and committed >= messages:
            break
        if task.done():
            await task
        await asyncio.sleep(0.05)
    if first is None:
        raise RuntimeError("the detector committed nothing")
    elapsed = time.perf_counter() - first[0]
    messages -= first[1]
    stop.set()
    await task
    await probe.stop()
    async with sessions() as session:
        outages = len((await session.scalars(select(Outage.id))).all())
    await engine.dispose()
    return messages / elapsed, outages


async def one_round(
    bootstrap: str, tmp: str, index: int, messages: int, devices: int
) -> dict[str, float | int]:
    """One round: both baselines and the detector, back to back, in alternating order."""
    settings = RoundSettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=f"sqlite+aiosqlite:///{Path(tmp) / f'round-{index}.db'}",
        topic_prefix="bench.",
        kafka_session_timeout_ms=6000,
        bench_round=f"round-{index}.",
    )
    topic = settings.topic("telemetry")
    figures: dict[str, float | int] = {}

    async def baselines() -> None:
        figures["raw_msgs_per_s"] = round(
            await raw_rate(settings, ["telemetry", "contacts"], messages)
        )
        figures["raw_telemetry_only_msgs_per_s"] = round(
            await raw_rate(
                settings.model_copy(update={"bench_round": f"round-{index}.only."}),
                ["telemetry"],
                messages,
            )
        )

    async def detector() -> None:
        await seed_database(settings.database_url, devices)
        ours, outages = await detector_rate(settings, topic, messages)
        figures["detector_msgs_per_s"] = round(ours)
        figures["outages"] = outages

    for step in (baselines, detector) if index % 2 == 0 else (detector, baselines):
        await step()
    figures["ratio"] = round(figures["detector_msgs_per_s"] / figures["raw_msgs_per_s"], 3)
    figures["ratio_telemetry_only"] = round(
        figures["detector_msgs_per_s"] / figures["raw_telemetry_only_msgs_per_s"], 3
    )
    console.print(
        f"round {index + 1}: raw {figures['raw_msgs_per_s']:,} msg/s (telemetry only "
        f"{figures['raw_telemetry_only_msgs_per_s']:,}), detector "
        f"{figures['detector_msgs_per_s']:,} ({figures['outages']} outages): "
        f"ratio {figures['ratio']}"
    )
    return figures


async def run(messages: int, devices: int, rounds: int) -> dict[str, object]:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap = broker.bootstrap_servers
        names = Settings(topic_prefix="bench.")
        await ensure_topics(
            bootstrap,
            [names.topic(t) for t in ("telemetry", "contacts", "outage-events", "telemetry.dlq")],
            1,
        )
        console.print(f"{messages:,} messages from {devices:,} devices, {len(METRICS)} rules")
        await produce(bootstrap, names.topic("telemetry"), messages, devices)
        runs = [await one_round(bootstrap, tmp, i, messages, devices) for i in range(rounds)]
    median = statistics.median_low([r["ratio"] for r in runs])
    middle = next(r for r in runs if r["ratio"] == median)  # the round the median comes from
    figures: dict[str, object] = {
        "messages": messages,
        "devices": devices,
        "rounds": runs,
        "raw_msgs_per_s": middle["raw_msgs_per_s"],
        "detector_msgs_per_s": middle["detector_msgs_per_s"],
        "ratio": median,
        "ratio_min": min(r["ratio"] for r in runs),
        "ratio_max": max(r["ratio"] for r in runs),
        "ratio_telemetry_only": statistics.median_low([r["ratio_telemetry_only"] for r in runs]),
    }
    table = Table(title="Detector throughput (same broker, same run)")
    for column in ("round", "raw msg/s", "raw, telemetry only", "detector msg/s", "ratio"):
        table.add_column(column, justify="right")
    for index, r in enumerate(runs, start=1):
        table.add_row(
            str(index),
            f"{r['raw_msgs_per_s']:,}",
            f"{r['raw_telemetry_only_msgs_per_s']:,}",
            f"{r['detector_msgs_per_s']:,}",
            f"{r['ratio']} ({r['ratio_telemetry_only']})",
        )
    table.add_row("median", "", "", "", f"[bold]{median}[/] ({figures['ratio_telemetry_only']})")
    console.print(table)
    return figures


def run_throughput(messages: int, devices: int, rounds: int = 5) -> dict[str, object]:
    return asyncio.run(run(messages, devices, rounds))
