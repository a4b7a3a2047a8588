"""Poison telemetry through a real `forewarn detector`: every bad message lands in the DLQ
with its reason, the good traffic around it still opens the outage, the detector lives on.

The corpus is interleaved with good telemetry in every tick. Each poison message carries its
corpus name as its Kafka key, which the DLQ keeps, so each DLQ record is matched to the item
it came from and its `reason` header compared with the reason docs/telemetry.md gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory, transaction
from app.net import free_port
from app.outages.models import Outage
from app.rules.schemas import RatioDownRule
from app.settings import Settings
from consumers.broker import TOPICS, ensure_topics
from consumers.metrics import consumer_metrics
from consumers.telemetry import Detector
from tests.e2e.processes import Component, components, json_lines, logged, tails
from tests.factories import detector_running, make_rule, seed_modems_and_rule
from tests.fixtures.db import _empty_all_tables
from tests.reliability.corpus import FAST_PATH_POISON, MiB, corpus
from tests.reliability.figures import record, scale
from tests.reliability.processes import scrape
from tests.waiting import eventually

pytestmark = pytest.mark.reliability

NODES = [f"node-{n}" for n in range(4)]
FAULTY = "node-2"
PER_NODE = 20
TICK_MS = 5_000
TICKS = 10  # 50 s of event time: the rule's `for` (20 s) is over well before the end
RULE = RatioDownRule.model_validate(
    make_rule(
        name="modems-down-on-node", scope="node", min_devices=10, for_="20s", services=["internet"]
    )
)


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Four nodes of twenty modems each and the ratio_down rule, straight into the database."""
    async with transaction(sessions) as session:
        await seed_modems_and_rule(session=session, nodes=NODES, per_node=PER_NODE, rule=RULE)


def good_tick(base_ms: int, tick: int, ghosts: int = 0) -> list[tuple[bytes, bytes]]:
    """(key, value) of every modem's reading in one tick; most of FAULTY's are down.

    `ghosts` well-formed readings come from devices missing from the inventory, without labels.
    """
    out = []
    for node in NODES:
        for d in range(PER_NODE):
            message = {
                "ts": base_ms + tick * TICK_MS,
                "device_id": f"{node}-cpe-{d}",
                "metric": "cpe.online",
                "value": not (node == FAULTY and d < 14),
            }
            out.append((node.encode(), orjson.dumps(message)))
    for g in range(ghosts):
        ghost = {"ts": base_ms + tick * TICK_MS, "device_id": f"ghost-{g}", "metric": "cpe.online"}
        out.append((b"ghost", orjson.dumps({**ghost, "value": False})))
    return out


def big_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 * MiB)


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Send these (key, value) messages to `topic` and flush."""
    producer = big_producer(bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def read_dlq(
    bootstrap: str, topic: str, seconds: float = 2.0
) -> list[ConsumerRecord[Any, Any]]:
    """Every record in the DLQ topic so far."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * MiB,
        fetch_max_bytes=32 * MiB,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return records


def header(record: ConsumerRecord[Any, Any], name: str) -> str:
    return next((v.decode() for k, v in record.headers if k == name), "")


async def outages(sessions: async_sessionmaker[AsyncSession]) -> list[Outage]:
    async with sessions() as session:
        return list(await session.scalars(select(Outage)))


@pytest.fixture
async def pg(postgresql_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(postgresql_url)
    await _empty_all_tables(engine)
    sessions = session_factory(engine)
    await seed(sessions)
    yield sessions
    await engine.dispose()


async def test_every_poison_message_lands_in_the_dlq_with_its_reason_and_the_outage_opens(
    pg: async_sessionmaker[AsyncSession],
    postgresql_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    await ensure_topics(kafka_bootstrap, [f"{topic_prefix}{name}" for name in TOPICS], 4)
    metrics_port = free_port()
    env = {
        "FOREWARN_DATABASE_URL": postgresql_url,
        "FOREWARN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "FOREWARN_TOPIC_PREFIX": topic_prefix,
        "FOREWARN_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FOREWARN_CORRELATE_MIN_CHILDREN": "0",
        "FOREWARN_LOG_FORMAT": "json",
        "FOREWARN_METRICS_PORT": str(metrics_port),
    }
    items = corpus() * scale()
    by_key = {f"{i:04d}-{item.name}".encode(): item for i, item in enumerate(items)}
    detector = Component("detector", env, tmp_path, "detector")
    telemetry = f"{topic_prefix}telemetry"
    dlq = f"{topic_prefix}telemetry.dlq"
    base_ms = int(time.time() * 1000) - 600_000
    ghosts = 5
    started = time.monotonic()
    with components(detector) as procs:
        detector.start()
        await eventually(
            lambda: logged(detector, "partitions assigned"),
            "partitions",
            seconds=60,
            detail=lambda: tails(procs),
        )
        producer = big_producer(kafka_bootstrap)
        await producer.start()
        good = 0
        try:
            keys = list(by_key)
            per_tick = -(-len(keys) // TICKS)
            for tick in range(TICKS):
                for key, value in good_tick(base_ms, tick, ghosts):
                    await producer.send(telemetry, value, key=key)
                    good += 1
                for key in keys[tick * per_tick : (tick + 1) * per_tick]:
                    await producer.send(telemetry, by_key[key].value, key=key)
                await producer.flush()
                await asyncio.sleep(0.2)  # several batches, poison in each
        finally:
            await producer.stop()

        async def all_dead_lettered_and_open() -> bool:
            opened = [o for o in await outages(pg) if o.state == "open"]
            return bool(opened) and len(await read_dlq(kafka_bootstrap, dlq, 1.0)) >= len(items)

        await eventually(
            all_dead_lettered_and_open,
            "the DLQ and the outage",
            seconds=90,
            every=1.0,
            detail=lambda: tails(procs),
        )
        seconds = time.monotonic() - started
        await asyncio.sleep(1.0)  # anything still to come would be a ghost reading, wrongly
        records = await read_dlq(kafka_bootstrap, dlq, 2.0)
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        alive = detector.running
        exit_code = detector.stop()
        log = detector.log()

    assert alive, tails(procs)
    assert exit_code == 0, tails(procs)
    assert logged(detector, "detector batch failed; retrying") == 0, log[-5000:]

    # Every poison message is in the DLQ once, with its reason, its bytes and its origin.
    wrong = []
    assert sorted(r.key for r in records) == sorted(by_key), "DLQ records ≠ corpus"
    for dead in records:
        item = by_key[dead.key]
        reason = header(dead, "reason")
        if reason not in item.reasons:
            wrong.append((item.name, reason, header(dead, "detail")))
        assert header(dead, "detail"), item.name
        topic, partition, offset = header(dead, "source").rsplit("/", 2)
        assert topic == telemetry and partition.isdigit() and offset.isdigit(), item.name
        assert dead.value == (item.value or b""), item.name
    assert not wrong, wrong

    # The good traffic around the poison still opened exactly the expected outage.
    [outage] = await outages(pg)
    assert (outage.scope_id, outage.state) == (FAULTY, "open")

    # The detector counted what it refused, by reason, and wrote each to the DLQ.
    reasons: dict[str, int] = {}
    for dead in records:
        reasons[header(dead, "reason")] = reasons.get(header(dead, "reason"), 0) + 1
    failures = scrape(text, "forewarn_decode_failures_total")
    assert {dict(k)["reason"]: v for k, v in failures.items()} == reasons
    assert sum(scrape(text, "forewarn_dlq_writes_total").values()) == len(items)
    consumed = sum(
        v for k, v in scrape(text, "forewarn_events_consumed_total").items() if telemetry in str(k)
    )
    assert consumed >= good + len(items)

    warnings = [line for line in json_lines(log) if line.get("event") == "telemetry to DLQ"]
    assert len(warnings) == len(items)
    record(
        "poison",
        {
            "corpus_items": len(items),
            "good_messages": good,
            "ghost_readings": ghosts * TICKS,
            "dead_lettered": len(records),
            "reasons": dict(sorted(reasons.items())),
            "seconds_to_dlq_all_and_open": round(seconds, 1),
        },
    )


# -- in-process detector: the engine's own counters, and the known bugs ----------------------


@dataclass
class InProcess:
    detector: Detector
    registry: CollectorRegistry
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def consumed(self) -> float:
        telemetry = self.settings.topic("telemetry")
        return self.sample("forewarn_events_consumed_total", topic=telemetry, partition="0")

    def dlq_writes(self) -> float:
        return self.sample("forewarn_dlq_writes_total", topic=self.settings.topic("telemetry.dlq"))

    def failed_batches(self) -> float:
        """Batches the loop's outermost guard caught (read again, or their transitions retried)."""
        return self.sample("forewarn_messages_skipped_total", consumer="detector", reason="error")


async def dead_lettered(run: InProcess, count: int) -> None:
    """Wait for `count` dead letters, then check no batch failed (and so lost its messages)."""
    await eventually(
        lambda: run.dlq_writes() >= count or run.failed_batches() > 0,
        f"{count} dead letter(s), or a failed batch",
        seconds=60,
    )
    assert run.failed_batches() == 0, "a batch failed: its messages were consumed and dropped"


@contextlib.asynccontextmanager
async def in_process_detector(
    sqlite_url: str, bootstrap: str, prefix: str
) -> AsyncIterator[InProcess]:
    """A Detector on this event loop, on SQLite, with one partition per topic."""
    await ensure_topics(bootstrap, [f"{prefix}{name}" for name in TOPICS], 1)
    engine = create_engine(sqlite_url)
    await _empty_all_tables(engine)
    sessions = session_factory(engine)
    await seed(sessions)
    settings = Settings(
        database_url=sqlite_url,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        kafka_session_timeout_ms=6000,
        correlate_min_children=0,
    )
    registry = CollectorRegistry()
    detector = Detector(settings=settings, sessions=sessions, metrics=consumer_metrics(registry))
    try:
        async with detector_running(detector):
            yield InProcess(detector, registry, settings, sessions)
    finally:
        await engine.dispose()


async def test_a_reading_from_a_device_missing_from_the_inventory_is_counted_unscoped(
    sqlite_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """docs/rules.md: placed by its labels when it has them, otherwise counted as unscoped
    and ignored — not dead-lettered: it is a well-formed message."""
    telemetry = f"{topic_prefix}telemetry"
    async with in_process_detector(sqlite_url, kafka_bootstrap, topic_prefix) as run:
        producer = big_producer(kafka_bootstrap)
        await producer.start()
        sent = 0
        try:
            base_ms = int(time.time() * 1000) - 600_000
            for tick in range(3):
                for key, value in good_tick(base_ms, tick, ghosts=4):
                    await producer.send(telemetry, value, key=key)
                    sent += 1
            await producer.flush()
        finally:
            await producer.stop()
        await eventually(lambda: run.consumed() >= sent, "every reading consumed", seconds=60)
        await asyncio.sleep(0.5)
        assert run.consumed() == sent
        assert run.detector.engine.unscoped == 3 * 4
        assert run.dlq_writes() == 0
        assert run.failed_batches() == 0
    assert await read_dlq(kafka_bootstrap, f"{topic_prefix}telemetry.dlq", 1.0) == []


async def test_a_two_mib_message_is_dead_lettered_and_its_batch_is_not_lost(
    sqlite_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with in_process_detector(sqlite_url, kafka_bootstrap, topic_prefix) as run:
        base_ms = int(time.time() * 1000) - 600_000
        huge = b'{"ts": 1795000000000, "pad": "' + b"x" * (2 * MiB) + b'"}'
        messages = [*good_tick(base_ms, 0), (b"two-mib", huge)]
        await produce(kafka_bootstrap, f"{topic_prefix}telemetry", messages)
        await dead_lettered(run, 1)
    [dead] = await read_dlq(kafka_bootstrap, f"{topic_prefix}telemetry.dlq", 2.0)
    assert header(dead, "reason") == "too_large"


async def test_what_trips_the_hot_path_is_dead_lettered_and_its_batch_is_not_lost(
    sqlite_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with in_process_detector(sqlite_url, kafka_bootstrap, topic_prefix) as run:
        base_ms = int(time.time() * 1000) - 600_000
        poison = [(item.name.encode(), item.value) for item in FAST_PATH_POISON]
        await produce(kafka_bootstrap, f"{topic_prefix}telemetry", good_tick(base_ms, 0) + poison)
        await dead_lettered(run, len(FAST_PATH_POISON))
    records = await read_dlq(kafka_bootstrap, f"{topic_prefix}telemetry.dlq", 2.0)
    reasons = {r.key.decode(): header(r, "reason") for r in records}
    assert set(reasons) == {item.name for item in FAST_PATH_POISON}
    for item in FAST_PATH_POISON:
        assert reasons[item.name] in item.reasons


async def test_a_contact_with_a_list_as_channel_is_dead_lettered(
    sqlite_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with in_process_detector(sqlite_url, kafka_bootstrap, topic_prefix) as run:
        contact = {"ts": int(time.time() * 1000), "customer_id": "c-1", "channel": ["call"]}
        await produce(kafka_bootstrap, f"{topic_prefix}contacts", [(b"c-1", orjson.dumps(contact))])
        await dead_lettered(run, 1)
    [dead] = await read_dlq(kafka_bootstrap, f"{topic_prefix}telemetry.dlq", 2.0)
    assert header(dead, "reason") == "bad_type"
