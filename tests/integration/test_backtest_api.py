"""Backtests through the API and the CLI: recorded telemetry in, would-be outages out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.settings import Role
from consumers.broker import TOPICS
from tests.factories import make_rule
from tests.fixtures.kafka import TopicFactory
from tests.integration.api_client import ClientFactory, api_settings, client_factory

pytestmark = pytest.mark.integration

T0_MS = int(time.time() * 1000) - 3_600_000
RULE = make_rule(
    name="modems-down-on-node",
    min_devices=10,
    for_="30s",
    confirm_after="60s",
    severity="major",
    services=["internet"],
    enabled=False,
)
NODES = ["node-1", "node-2"]


def inventory() -> dict[str, Any]:
    """Two nodes of 20 modems; a customer per modem."""
    devices = [
        {"id": f"{node}-d{d}", "node": node, "services": ["internet"]}
        for node in NODES
        for d in range(20)
    ]
    customers = [
        {
            "id": f"c-{device['id']}",
            "name": "Customer",
            "email": f"{device['id']}@example.com",
            "channels": ["email"],
            "devices": [device["id"]],
        }
        for device in devices
    ]
    return {
        "nodes": [
            {"id": "north", "level": "region"},
            {"id": "hub-1", "level": "hub", "parent": "north"},
            *({"id": node, "level": "node", "parent": "hub-1"} for node in NODES),
        ],
        "devices": devices,
        "customers": customers,
    }


def recording() -> list[dict[str, Any]]:
    """Ten minutes, a reading per modem every 15 s; 15 of node-1's modems down for 4 min."""
    events = []
    for tick in range(40):
        for node in NODES:
            for d in range(20):
                down = node == "node-1" and d < 15 and 8 <= tick < 24
                events.append(
                    {
                        "ts": T0_MS + tick * 15_000,
                        "device_id": f"{node}-d{d}",
                        "metric": "cpe.online",
                        "value": not down,
                    }
                )
    return events


@pytest.fixture
async def stored(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[ClientFactory, int]]:
    client = client_factory(api_settings(database_url), sessions)
    async with client() as api:
        assert (await api.put("/v1/inventory", json=inventory())).status_code == 200
        rule_id = (await api.post("/v1/rules", json=RULE)).json()["id"]
    yield client, rule_id


async def test_a_backtest_shows_the_outage_a_disabled_rule_would_have_opened_and_who_heard(
    stored: tuple[ClientFactory, int],
) -> None:
    client, rule_id = stored
    async with client(Role.ENGINEER) as api:
        response = await api.post(f"/v1/rules/{rule_id}/backtest", json={"events": recording()})

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["events"], result["opened"], result["customers_reached"]) == (1600, 1, 20)
    [outage] = result["outages"]
    assert (outage["scope_id"], outage["final_state"], outage["customers"]) == (
        "node-1",
        "resolved",
        20,
    )
    # Down from tick 8; `for` 30 s, then `confirm_after` 60 s before anyone would be told.
    opened = outage["opened_at"]
    assert opened is not None and outage["suspected_at"] < opened


async def test_a_trial_definition_is_replayed_instead_of_the_stored_one(
    stored: tuple[ClientFactory, int],
) -> None:
    client, rule_id = stored
    stricter = {**RULE, "threshold": 0.9}
    async with client() as api:
        response = await api.post(
            f"/v1/rules/{rule_id}/backtest", json={"events": recording(), "rule": stricter}
        )
    result = response.json()
    assert result["outages"] == [] and result["rule_version"] is None


async def test_a_backtest_names_bad_events_and_asks_for_one_source(
    stored: tuple[ClientFactory, int],
) -> None:
    client, rule_id = stored
    events = recording()[:3]
    events[1] = {"device_id": "node-1-d0", "metric": "cpe.online", "value": 1}
    async with client() as api:
        bad = await api.post(f"/v1/rules/{rule_id}/backtest", json={"events": events})
        neither = await api.post(f"/v1/rules/{rule_id}/backtest", json={})
        viewer = await client(Role.VIEWER).__aenter__()
        forbidden = await viewer.post(f"/v1/rules/{rule_id}/backtest", json={"events": []})
        await viewer.aclose()
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {"field": "events[1]", "reason": "missing_field: ts is missing"}
    ]
    assert neither.status_code == 422
    assert forbidden.status_code == 403


async def test_a_backtest_can_replay_a_time_range_of_the_telemetry_topic(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
    topic_prefix: str,
    topic_factory: TopicFactory,
) -> None:
    await topic_factory([f"{topic_prefix}{name}" for name in TOPICS], 2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for event in recording():
            await producer.send(
                f"{topic_prefix}telemetry",
                orjson.dumps(event),
                key=event["device_id"][:6].encode(),
                timestamp_ms=event["ts"],
            )
        await producer.send(f"{topic_prefix}telemetry", b"not json", timestamp_ms=T0_MS + 1)
        await producer.flush()
    finally:
        await producer.stop()
    settings = api_settings(
        database_url, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix
    )
    client = client_factory(settings, sessions)
    async with client() as api:
        await api.put("/v1/inventory", json=inventory())
        rule_id = (await api.post("/v1/rules", json=RULE)).json()["id"]
        response = await api.post(
            f"/v1/rules/{rule_id}/backtest",
            json={"from": _iso(T0_MS - 1000), "to": _iso(T0_MS + 40 * 15_000)},
        )
        early = await api.post(
            f"/v1/rules/{rule_id}/backtest",
            json={"from": _iso(T0_MS - 1000), "to": _iso(T0_MS + 5 * 15_000)},
        )
    result = response.json()
    assert (result["events"], result["invalid"], result["opened"]) == (1600, 1, 1)
    assert early.json()["events"] == 5 * 40 and early.json()["opened"] == 0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_the_cli_backtests_a_recorded_file(tmp_path: Path, cli_database: Path) -> None:
    from forewarn.cli import app

    recorded = tmp_path / "telemetry.ndjson"
    recorded.write_bytes(b"\n".join(orjson.dumps(e) for e in recording()) + b"\n")
    inventory_file = tmp_path / "inventory.json"
    inventory_file.write_bytes(orjson.dumps(inventory()))
    rules_file = tmp_path / "rules.json"
    rules_file.write_bytes(orjson.dumps([RULE]))
    env = {"FOREWARN_DATABASE_URL": f"sqlite+aiosqlite:///{cli_database}"}
    runner = CliRunner()
    assert runner.invoke(app, ["inventory", "import", str(inventory_file)], env=env).exit_code == 0
    assert runner.invoke(app, ["rules", "apply", str(rules_file)], env=env).exit_code == 0

    result = runner.invoke(
        app, ["rules", "backtest", RULE["name"], "--events", str(recorded)], env=env
    )

    assert result.exit_code == 0, result.output
    assert "1 outage(s) would have opened and told 20 customer(s)" in " ".join(
        result.output.split()
    )
    assert "node:node-1" in result.output
