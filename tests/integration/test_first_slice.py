"""The first slice end to end: telemetry on Kafka -> outage -> SMS and e-mail -> resolved.

Real broker, real database (SQLite and PostgreSQL), real SMTP server, real HTTP SMS gateway;
Forewarn's detector, planner and notifier run as they do in `forewarn all`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from app.db import create_engine, session_factory
from app.main import create_app
from app.settings import ApiToken, Role, Settings
from consumers.broker import TOPICS
from forewarn.runtime import Runtime, run_until_stopped
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.smtp_sink import SmtpSink
from tests.factories import node_rule
from tests.fixtures.kafka import TopicFactory
from tests.waiting import eventually

pytestmark = pytest.mark.integration

TOKEN = "slice-admin-token-0123456789"
RULE = node_rule()


def inventory() -> dict[str, Any]:
    """node-17 has 20 modems; Anna (de), Ben (en) and Dora (de, e-mail only) are on it, Chloe
    is on node-18. Anna lists SMS and e-mail: during an internet outage her e-mail (read over
    the broadband that is down) is skipped because SMS reaches her."""
    devices = [
        {"id": f"cpe-{i:04d}", "node": "node-17", "services": ["internet"]} for i in range(20)
    ]
    devices[0]["services"] = ["internet", "tv"]
    devices += [
        {"id": f"cpe-{i:04d}", "node": "node-18", "services": ["internet"]} for i in range(20, 40)
    ]
    return {
        "nodes": [
            {"id": "north", "level": "region"},
            {"id": "hub-1", "level": "hub", "parent": "north"},
            {"id": "node-17", "level": "node", "parent": "hub-1"},
            {"id": "node-18", "level": "node", "parent": "hub-1"},
        ],
        "devices": devices,
        "customers": [
            {
                "id": "c-1",
                "name": "Anna Weber",
                "phone": "+4915112345678",
                "email": "anna@example.com",
                "language": "de",
                "timezone": "Europe/Berlin",
                "channels": ["sms", "email"],
                "devices": ["cpe-0000"],
            },
            {
                "id": "c-2",
                "name": "Ben Carter",
                "phone": "+447911123456",
                "email": "ben@example.co.uk",
                "language": "en",
                "timezone": "Europe/London",
                "channels": ["sms"],
                "devices": ["cpe-0001"],
            },
            {
                "id": "c-4",
                "name": "Dora Schulz",
                "email": "dora@example.de",
                "language": "de",
                "timezone": "Europe/Berlin",
                "channels": ["email"],
                "devices": ["cpe-0002"],
            },
            {
                "id": "c-3",
                "name": "Chloe Martin",
                "phone": "+447911123457",
                "email": "chloe@example.co.uk",
                "language": "en",
                "timezone": "Europe/London",
                "channels": ["sms", "email"],
                "devices": ["cpe-0020"],
            },
        ],
    }


@pytest.fixture
async def settings(
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    topic_factory: TopicFactory,
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> Settings:
    await topic_factory([f"{topic_prefix}{name}" for name in TOPICS], 2)
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=6000,  # the embedded broker holds a join for half of it
        topic_prefix=topic_prefix,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        sms_gateway_url=sms_gateway.url,
        sms_gateway_token=SecretStr(sms_gateway.credentials),
        api_tokens=(ApiToken("test", Role.ADMIN, SecretStr(TOKEN)),),
        public_base_url="https://status.example.net",
        resolve_hold_minutes=0,  # tell "resolved" as soon as the clear is persisted
        metrics_port=0,  # no probe server on a fixed port in tests
    )


@pytest.fixture
async def running(settings: Settings, db_engine: Any) -> AsyncIterator[Runtime]:
    """Detector, planner and notifier running against the test's database and topics."""
    engine = create_engine(settings.database_url)
    runtime = Runtime(settings, engine, session_factory(engine))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_until_stopped(runtime, ("detector", "planner", "notifier"), stop)
    )
    yield runtime
    stop.set()
    await asyncio.wait_for(task, 30)
    await engine.dispose()


@pytest.fixture
async def api(running: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings=running.settings, sessions=running.sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://forewarn",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


async def publish(settings: Settings, ts_ms: int, down: set[int], node_devices: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for i in node_devices:
            message = {
                "ts": ts_ms,
                "device_id": f"cpe-{i:04d}",
                "metric": "cpe.online",
                "value": i not in down,
            }
            node = "node-17" if i < 20 else "node-18"
            await producer.send(
                settings.topic("telemetry"), orjson.dumps(message), key=node.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def test_modems_down_on_a_node_notify_its_customers_then_tell_them_it_is_resolved(
    settings: Settings,
    api: httpx.AsyncClient,
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    loaded = await api.put("/v1/inventory", json=inventory())
    assert loaded.status_code == 200, loaded.text
    created = await api.post("/v1/rules", json=RULE)
    assert created.status_code == 201, created.text
    await asyncio.sleep(0)

    # Event time drives the rule: 12 of 20 modems go down and stay down for 30 s.
    t0 = int(time.time() * 1000) - 120_000
    everyone = range(40)
    await publish(settings, t0, set(), everyone)
    await publish(settings, t0 + 5_000, set(range(2, 14)), everyone)
    await publish(settings, t0 + 40_000, set(range(2, 14)), everyone)

    await eventually(lambda: len(sms_gateway.messages) >= 2, "two detected SMS")
    await eventually(lambda: len(smtp_server.messages) >= 1, "one detected e-mail")

    outages = (await api.get("/v1/outages", params={"state": "open"})).json()
    [outage] = outages if isinstance(outages, list) else outages["items"]
    assert outage["rule_name"] == "modems-down-on-node"
    assert (outage["scope_level"], outage["scope_id"]) == ("node", "node-17")
    assert outage["affected_customers"] == 3
    assert outage["opened_at"] is not None

    sms = {m.to: m.body for m in sms_gateway.messages}
    assert set(sms) == {"+4915112345678", "+447911123456"}  # never Chloe on node-18
    assert "Anna" in sms["+4915112345678"] and "Internet" in sms["+4915112345678"]
    assert "Ben" in sms["+447911123456"]
    assert "internet" in sms["+447911123456"].lower()
    [email] = smtp_server.messages
    assert email["To"] == "dora@example.de"
    assert "Dora" in email.get_body(("plain",)).get_content()
    assert "https://status.example.net/o/" in email.get_body(("plain",)).get_content()
    german, english = sms["+4915112345678"], sms["+447911123456"]
    assert german != english

    # The node recovers: everyone who was told hears it is resolved, once.
    await publish(settings, t0 + 60_000, set(), everyone)
    await eventually(lambda: len(sms_gateway.messages) >= 4, "two resolved SMS")
    await eventually(lambda: len(smtp_server.messages) >= 2, "one resolved e-mail")
    resolved = (await api.get("/v1/outages", params={"state": "resolved"})).json()
    resolved = resolved if isinstance(resolved, list) else resolved["items"]
    assert [o["id"] for o in resolved] == [outage["id"]]

    await asyncio.sleep(2)  # anything sent twice would have arrived by now
    assert len(sms_gateway.messages) == 4
    assert len(smtp_server.messages) == 2
    later_sms = [m.body for m in sms_gateway.messages[2:]]
    assert all(body not in sms.values() for body in later_sms)
