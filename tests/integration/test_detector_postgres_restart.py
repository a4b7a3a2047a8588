"""A detector meeting a PostgreSQL restart, at start-up or after a rebalance, loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine, session_factory, transaction
from app.outages.models import Outage
from app.rules.schemas import RatioDownRule
from app.settings import Settings
from consumers.telemetry import Detector
from tests.factories import detector_running, make_rule, seed_modems_and_rule
from tests.fixtures.kafka import TopicFactory
from tests.restarting_postgres import RestartingPostgres
from tests.waiting import eventually

RULE = RatioDownRule.model_validate(
    make_rule(threshold=0.5, clear_threshold=0.2, min_devices=4, for_="0s")
)


TOPICS = ("telemetry", "contacts", "outage-events", "telemetry.dlq")


@dataclass
class Running:
    """A detector running in the test's loop, behind `postgres`."""

    detector: Detector
    task: asyncio.Task[None]
    settings: Settings
    postgres: RestartingPostgres


@pytest.fixture
async def running(
    database_url: str,
    db_engine: AsyncEngine,
    kafka_bootstrap: str,
    topic_prefix: str,
    topic_factory: TopicFactory,
) -> AsyncIterator[Running]:
    """Four modems on node-1 and RULE in PostgreSQL; a detector started behind a stand-in that
    is down until the test starts it."""
    async with transaction(session_factory(db_engine)) as session:
        await seed_modems_and_rule(session=session, nodes=["node-1"], per_node=4, rule=RULE)
    async with RestartingPostgres(database_url) as postgres:
        settings = Settings(
            database_url=postgres.url,
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=topic_prefix,
            kafka_session_timeout_ms=6000,
        )
        await topic_factory([settings.topic(name) for name in TOPICS], 1)
        engine = create_engine(postgres.url)
        detector = Detector(
            settings=settings, sessions=session_factory(engine), refresh_seconds=3600
        )
        try:
            async with detector_running(detector) as task:
                yield Running(detector, task, settings, postgres)
        finally:
            await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_detector_started_while_postgresql_restarts_waits_for_it_then_detects(
    running: Running, db_engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    postgres, task = running.postgres, running.task
    await eventually(lambda: postgres.refused >= 3 or task.done(), "three refusals", seconds=90)
    assert not task.done(), "the detector gave up while PostgreSQL was starting"
    postgres.start()
    await _all_modems_down(kafka_bootstrap, running.settings.topic("telemetry"))
    await eventually(lambda: _open_outages(db_engine), "the outage to open", seconds=60)

    opened = await _open_outages(db_engine)
    assert [(o.rule_name, o.scope_id) for o in opened] == [("modems-down", "node-1")]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_batch_read_while_a_rebalance_cannot_reach_postgresql_is_read_again(
    running: Running, db_engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    """After a rebalance the detector reconciles with the database before it applies a batch;
    while PostgreSQL is down that fails, and the batch must come back, not be skipped: here
    it holds the only readings that show the outage."""
    postgres, settings = running.postgres, running.settings
    postgres.start()
    await eventually(
        lambda: running.detector.assigned, "the detector to join its group", seconds=90
    )
    postgres.stop()
    await _rebalance(kafka_bootstrap, settings, [settings.topic(n) for n in TOPICS[:2]])
    refused = postgres.refused
    await _all_modems_down(kafka_bootstrap, settings.topic("telemetry"))
    # Each try reads the batch, fails to reconcile and goes back for it.
    await eventually(
        lambda: postgres.refused >= refused + 3, "three reconcile attempts", seconds=90
    )
    postgres.start()
    await eventually(lambda: _open_outages(db_engine), "the outage to open", seconds=60)

    opened = await _open_outages(db_engine)
    assert [(o.rule_name, o.scope_id) for o in opened] == [("modems-down", "node-1")]


async def _rebalance(bootstrap: str, settings: Settings, topics: list[str]) -> None:
    """Another member joins the detectors' group and leaves: two rebalances."""
    member = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=settings.group("forewarn-detector"),
        session_timeout_ms=6000,
        heartbeat_interval_ms=600,
    )
    await member.start()
    try:
        await eventually(lambda: member.assignment() is not None, "the member to join", seconds=90)
        await member.getmany(timeout_ms=1000)
    finally:
        await member.stop()


async def _all_modems_down(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        ts = int(datetime.now(UTC).timestamp() * 1000)
        for d in range(4):
            reading = {"ts": ts, "device_id": f"node-1-cpe-{d}", "metric": "cpe.online", "value": 0}
            await producer.send_and_wait(topic, orjson.dumps(reading), key=b"node-1")
    finally:
        await producer.stop()


async def _open_outages(engine: AsyncEngine) -> list[Outage]:
    async with session_factory(engine)() as session:
        return list(await session.scalars(select(Outage).where(Outage.state == "open")))
