"""One bad clock must not break detection: a message dated past the detector's clock plus
`max_clock_skew_seconds` goes to the DLQ (`future_timestamp`) and moves no watermark.

Real broker, real database (SQLite and PostgreSQL), a real Detector on this event loop with a
clock the test moves along with the event time it sends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.outages.models import Outage
from app.rules.schemas import AbsenceRule
from app.settings import Settings
from consumers.metrics import consumer_metrics
from consumers.telemetry import Detector
from tests.clock import FakeClock
from tests.factories import detector_running, seed_modems_and_rule
from tests.fixtures.kafka import TopicFactory
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NODES = ["node-0", "node-1", "node-2"]
PER_NODE = 4
TICK = 10  # seconds of event time between heartbeats
DAY = 86_400
# A device silent for 3 heartbeats (30 s of event time) is down; half a node down opens at once.
RULE = AbsenceRule.model_validate(
    {
        "name": "modems-silent",
        "kind": "absence",
        "metric": "cpe.heartbeat",
        "scope": "node",
        "expected_interval": f"{TICK}s",
        "missed_intervals": 3,
        "threshold": 0.5,
        "clear_threshold": 0.2,
        "min_devices": PER_NODE,
        "for": "0s",
    }
)
TOPICS = ("telemetry", "contacts", "outage-events", "telemetry.dlq")


@dataclass
class Running:
    detector: Detector
    clock: FakeClock
    t0: datetime
    settings: Settings
    registry: CollectorRegistry
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    bootstrap: str
    sent: int = 0

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def consumed(self) -> float:
        return sum(
            self.sample(
                "forewarn_events_consumed_total", topic=self.settings.topic(t), partition="0"
            )
            for t in ("telemetry", "contacts")
        )

    def ms(self, seconds: float) -> int:
        """Epoch milliseconds `seconds` after t0."""
        return int((self.t0 + timedelta(seconds=seconds)).timestamp() * 1000)

    async def send(self, topic: str, value: bytes, key: bytes) -> None:
        await self.producer.send_and_wait(self.settings.topic(topic), value, key=key)
        self.sent += 1

    async def heartbeats(self, seconds: Sequence[int], nodes: Sequence[str] = NODES) -> None:
        """Every modem of `nodes` reports at each of `seconds` after t0, the clock keeping pace."""
        for second in seconds:
            self.clock.now = self.t0 + timedelta(seconds=second)
            for node in nodes:
                for d in range(PER_NODE):
                    await self.send(
                        "telemetry", heartbeat(self.ms(second), f"{node}-cpe-{d}"), node.encode()
                    )

    async def all_consumed(self) -> None:
        await eventually(lambda: self.consumed() >= self.sent, "the detector to read everything")

    async def outages(self) -> list[Outage]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Outage)))


def heartbeat(ts_ms: int, device_id: str) -> bytes:
    return orjson.dumps(
        {"ts": ts_ms, "device_id": device_id, "metric": "cpe.heartbeat", "value": 1}
    )


@pytest.fixture
async def running(
    sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
    topic_prefix: str,
    topic_factory: TopicFactory,
) -> AsyncIterator[Running]:
    """Three nodes of four modems and RULE; a detector on a fake clock, joined to its group."""
    async with transaction(sessions) as session:
        await seed_modems_and_rule(session=session, nodes=NODES, per_node=PER_NODE, rule=RULE)
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        kafka_session_timeout_ms=6000,
        correlate_min_children=0,
    )
    await topic_factory([settings.topic(name) for name in TOPICS], 1)
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = FakeClock(t0)
    registry = CollectorRegistry()
    detector = Detector(
        settings=settings,
        sessions=sessions,
        clock=clock,
        metrics=consumer_metrics(registry),
        refresh_seconds=3600,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        async with detector_running(detector):
            await eventually(lambda: detector.assigned, "the detector to join its group")
            yield Running(
                detector, clock, t0, settings, registry, sessions, producer, kafka_bootstrap
            )
    finally:
        await producer.stop()


async def read_dlq(
    run: Running, count: int, seconds: float = 30.0
) -> list[ConsumerRecord[Any, Any]]:
    """The DLQ's records, once there are `count` of them (or what there is after `seconds`)."""
    consumer = AIOKafkaConsumer(
        run.settings.topic("telemetry.dlq"),
        bootstrap_servers=run.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + seconds
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return records


def header(record: ConsumerRecord[Any, Any], name: str) -> str:
    return next((v.decode() for k, v in record.headers if k == name), "")


async def test_a_reading_dated_a_day_ahead_is_dead_lettered_and_detection_goes_on(
    running: Running,
) -> None:
    run, detector = running, running.detector
    await run.heartbeats(range(0, 40, TICK))
    ahead = heartbeat(run.ms(30 + DAY), "node-0-cpe-0")
    await run.send("telemetry", ahead, b"node-0")

    # (a) In the DLQ, with its reason and its original bytes, counted by that reason.
    [dead] = await read_dlq(run, 1)
    assert header(dead, "reason") == "future_timestamp"
    assert dead.value == ahead
    assert dead.key == b"node-0"
    assert header(dead, "source").startswith(f"{run.settings.topic('telemetry')}/0/")
    failures = run.sample(
        "forewarn_decode_failures_total",
        topic=run.settings.topic("telemetry"),
        reason="future_timestamp",
    )
    assert failures == 1

    # (b) and (c): the watermark stayed near the true time, so no device looks silent and the
    # correctly dated readings after it are applied, none counted late.
    await run.heartbeats(range(40, 90, TICK))
    await run.all_consumed()
    assert detector.engine.watermark < run.t0.timestamp() + 3600
    assert detector.engine.late == 0
    assert run.sample("forewarn_late_events_total") == 0
    assert await run.outages() == []

    # (d) A real fault afterwards is still detected: node-1 goes silent, the others report on.
    await run.heartbeats(range(90, 160, TICK), nodes=["node-0", "node-2"])

    async def opened() -> list[Outage]:
        return [o for o in await run.outages() if o.state == "open"]

    await eventually(opened, "node-1's outage to open", seconds=60)
    assert [(o.rule_name, o.scope_id) for o in await run.outages()] == [("modems-silent", "node-1")]
    assert detector.engine.late == 0
    assert len(await read_dlq(run, 2, seconds=1.0)) == 1


async def test_a_contact_dated_a_day_ahead_is_dead_lettered_and_moves_no_clock(
    running: Running,
) -> None:
    run, detector = running, running.detector
    await run.heartbeats(range(0, 40, TICK))
    contact = orjson.dumps({"ts": run.ms(30 + DAY), "customer_id": "c-1", "channel": "call"})
    await run.send("contacts", contact, b"c-1")

    [dead] = await read_dlq(run, 1)
    assert header(dead, "reason") == "future_timestamp"
    assert dead.value == contact
    assert header(dead, "source").startswith(f"{run.settings.topic('contacts')}/0/")
    failures = run.sample(
        "forewarn_decode_failures_total",
        topic=run.settings.topic("contacts"),
        reason="future_timestamp",
    )
    assert failures == 1

    await run.heartbeats(range(40, 60, TICK))
    await run.all_consumed()
    assert detector.engine.watermark < run.t0.timestamp() + 3600
    assert detector.engine.late == 0
    assert await run.outages() == []


async def test_a_reading_within_the_allowed_skew_is_applied_and_one_past_it_is_not(
    running: Running,
) -> None:
    run, detector = running, running.detector
    await run.heartbeats(range(0, 40, TICK))  # the clock stands at t0 + 30 s
    past = heartbeat(run.ms(30 + 301), "node-0-cpe-1")  # 1 s past the default skew of 300 s
    await run.send("telemetry", past, b"node-0")
    await run.send("telemetry", heartbeat(run.ms(90), "node-0-cpe-0"), b"node-0")  # 60 s ahead
    await run.all_consumed()  # before the clock moves on
    await run.heartbeats([40])
    await run.all_consumed()

    assert run.t0.timestamp() + 90 <= detector.engine.watermark < run.t0.timestamp() + 331
    assert detector.engine.late == 0
    [dead] = await read_dlq(run, 1)
    assert (header(dead, "reason"), dead.value) == ("future_timestamp", past)
    assert run.sample("forewarn_dlq_writes_total", topic=run.settings.topic("telemetry.dlq")) == 1
