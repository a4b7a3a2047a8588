"""Detectors as real processes: kill -9, restart, and two replicas sharing the partitions.

Each test runs against PostgreSQL and the embedded broker, with `forewarn detector`
processes started exactly as an operator would start them (the one that must die between its
commit and its publish is the same detector, run by `tests/e2e/failing_detector.py`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory, transaction
from app.outages.models import Outage
from app.rules.schemas import RatioDownRule
from consumers.broker import TOPICS
from tests.e2e.processes import Component, components, json_lines, tails
from tests.factories import make_rule, seed_modems_and_rule
from tests.fixtures.db import _empty_all_tables
from tests.fixtures.kafka import TopicFactory
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

NODES = [f"node-{n}" for n in range(8)]
PER_NODE = 20
RULE = RatioDownRule.model_validate(
    make_rule(name="modems-down-on-node", scope="node", min_devices=10, for_="20s")
)


@pytest.fixture
async def pg(postgresql_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine = create_engine(postgresql_url)
    await _empty_all_tables(engine)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        await seed_modems_and_rule(session=session, nodes=NODES, per_node=PER_NODE, rule=RULE)
    yield sessions
    await engine.dispose()


@pytest.fixture
async def env(
    postgresql_url: str, kafka_bootstrap: str, topic_prefix: str, topic_factory: TopicFactory
) -> dict[str, str]:
    await topic_factory([f"{topic_prefix}{name}" for name in TOPICS], 4)
    return {
        "FOREWARN_DATABASE_URL": postgresql_url,
        "FOREWARN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "FOREWARN_TOPIC_PREFIX": topic_prefix,
        "FOREWARN_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FOREWARN_CORRELATE_MIN_CHILDREN": "0",
        "FOREWARN_LOG_FORMAT": "json",
        "FOREWARN_METRICS_PORT": "0",  # two detectors on one host would share the default port
    }


async def publish(env: dict[str, str], start_tick: int, ticks: int, faulty: set[str]) -> int:
    """Every modem reports every 5 s of event time; modems 0-13 of a faulty node are down."""
    producer = AIOKafkaProducer(bootstrap_servers=env["FOREWARN_KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    base = int(time.time() * 1000) - 3_600_000
    sent = 0
    try:
        for tick in range(start_tick, start_tick + ticks):
            for node in NODES:
                for d in range(PER_NODE):
                    down = node in faulty and d < 14
                    message = {
                        "ts": base + tick * 5_000,
                        "device_id": f"{node}-cpe-{d}",
                        "metric": "cpe.online",
                        "value": not down,
                    }
                    topic = env["FOREWARN_TOPIC_PREFIX"] + "telemetry"
                    await producer.send(topic, orjson.dumps(message), key=node.encode())
                    sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def outages(sessions: async_sessionmaker[AsyncSession]) -> list[Outage]:
    async with sessions() as session:
        return list(await session.scalars(select(Outage).order_by(Outage.started_at)))


def telemetry_partitions(proc: Component, env: dict[str, str]) -> set[str]:
    """The telemetry partitions `proc` logged it was assigned last (none before it joins)."""
    assigned = [
        line["partitions"]
        for line in json_lines(proc.log())
        if line.get("event") == "partitions assigned"
    ]
    topic = env["FOREWARN_TOPIC_PREFIX"] + "telemetry/"
    return {p for p in assigned[-1] if p.startswith(topic)} if assigned else set()


async def outage_events(env: dict[str, str]) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        env["FOREWARN_TOPIC_PREFIX"] + "outage-events",
        bootstrap_servers=env["FOREWARN_KAFKA_BOOTSTRAP_SERVERS"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=3000)
        return [orjson.loads(r.value or b"{}") for records in batch.values() for r in records]
    finally:
        await consumer.stop()


async def test_a_detector_killed_between_persist_and_publish_loses_nothing_and_doubles_nothing(
    pg: async_sessionmaker[AsyncSession], env: dict[str, str], tmp_path: Path
) -> None:
    first = Component("", env, tmp_path, "a", module="tests.e2e.failing_detector")
    second = Component("detector", env, tmp_path, "b")
    with components(first, second) as procs:
        await publish(env, 0, 12, faulty={"node-3"})  # 60 s down: the outage opens
        first.start()

        async def died() -> bool:
            return not first.running and bool(await outages(pg))

        await eventually(
            died,
            "the first detector to persist the outage and die",
            seconds=90,
            detail=lambda: tails(procs),
        )
        assert first.process is not None and first.process.returncode == 137
        second.start()  # replays the batch whose offsets were never committed

        async def published() -> bool:
            return any(e["state"] == "open" for e in await outage_events(env))

        await eventually(
            published,
            "the open event, published after the restart",
            seconds=90,
            detail=lambda: tails(procs),
        )
        await publish(env, 12, 8, faulty=set())  # the node recovers

        async def resolved() -> bool:
            return [o.state for o in await outages(pg)] == ["resolved"]

        await eventually(resolved, "the outage to resolve", seconds=90, detail=lambda: tails(procs))
        assert second.stop() == 0

    [outage] = await outages(pg)
    assert (outage.scope_id, outage.state) == ("node-3", "resolved")
    events = await outage_events(env)
    assert {e["outage_id"] for e in events} == {outage.id}
    assert {e["state"] for e in events} >= {"suspected", "open", "resolved"}


async def test_two_detectors_share_partitions_and_one_dying_mid_outage_loses_nothing(
    pg: async_sessionmaker[AsyncSession], env: dict[str, str], tmp_path: Path
) -> None:
    a = Component("detector", env, tmp_path, "a")
    b = Component("detector", env, tmp_path, "b")
    with components(a, b) as procs:
        a.start()
        b.start()

        def split() -> bool:
            """Each holds telemetry partitions the other does not, and together all four."""
            held = [telemetry_partitions(p, env) for p in (a, b)]
            return all(held) and not held[0] & held[1] and len(held[0] | held[1]) == 4

        await eventually(
            split,
            "both detectors to join the group and split the partitions",
            seconds=90,
            detail=lambda: tails(procs),
        )
        await publish(env, 0, 12, faulty={"node-1", "node-6"})

        async def both_open() -> bool:
            return sorted((o.scope_id, o.state) for o in await outages(pg)) == [
                ("node-1", "open"),
                ("node-6", "open"),
            ]

        await eventually(both_open, "two outages to open", seconds=90, detail=lambda: tails(procs))
        a.kill()  # whatever partitions it held move to b after the session timeout
        await publish(env, 12, 10, faulty=set())

        async def both_resolved() -> bool:
            return sorted((o.scope_id, o.state) for o in await outages(pg)) == [
                ("node-1", "resolved"),
                ("node-6", "resolved"),
            ]

        await eventually(
            both_resolved,
            "both outages to resolve on the survivor",
            seconds=90,
            detail=lambda: tails(procs),
        )
        assert b.stop() == 0
    assert len(await outages(pg)) == 2
