"""`forewarn simulate` against `forewarn all`, both as processes: every injected fault is found
before the first simulated customer calls about it, and nothing healthy is flagged."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from app.inventory.schemas import InventoryIn
from app.net import free_port
from forewarn.scenario import SCENARIOS as BUNDLED
from forewarn.scenario import load_scenario
from forewarn.simnetwork import build_network
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.smtp_sink import SmtpSink
from tests.e2e.processes import Component, components, wait_healthy

SCENARIOS = sorted(BUNDLED.glob("*.yaml"))

# 4 hubs x 2 nodes x 12 modems (96 customers); 8.5 scenario minutes played 20 times faster.
SHORT: dict[str, Any] = {
    "name": "e2e",
    "seed": 5,
    "time_scale": 20,
    "network": {
        "regions": 1,
        "hubs_per_region": 4,
        "nodes_per_hub": 2,
        "modems_per_node": 12,
        "set_top_box_share": 0.75,
    },
    "telemetry": {"heartbeat_interval": "30s", "snr_interval": "20s"},
    "calls": {"first_after": "3m", "share": 0.3, "over": "2m", "background_per_hour": 0},
    "faults": [
        # north-hub-1-node-2 holds the flapping modem and must stay quiet.
        {"kind": "flapping_device", "device": "cpe-00020", "start": 60, "duration": 420,
         "period": 40},
        {"kind": "fibre_cut", "node": "north-hub-1-node-1", "start": 160, "duration": 300},
        {"kind": "power_outage", "hub": "north-hub-2", "start": 180, "duration": 300},
        {"kind": "tv_degraded", "node": "north-hub-3-node-1", "start": 160, "duration": 300,
         "snr_db": 19},
        # Planned work silences north-hub-3-node-2: no outage may open there.
        {"kind": "maintenance", "scope": "north-hub-3-node-2", "start": 180, "duration": 240},
        {"kind": "olt_alarm", "node": "north-hub-4-node-1", "start": 200, "duration": 200},
    ],
    "settle": 30,
}  # fmt: skip
FAULTY = {
    "north-hub-1-node-1",
    "north-hub-2",
    "north-hub-2-node-1",
    "north-hub-2-node-2",
    "north-hub-3-node-1",
    "north-hub-4-node-1",
}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_ready_scenario_loads_and_builds_a_valid_inventory(path: Path) -> None:
    scenario = load_scenario(path)
    network = build_network(scenario)

    inventory = InventoryIn.model_validate(network.inventory)
    assert len(inventory.customers) == scenario.network.modems
    assert {c.language for c in inventory.customers} == set(scenario.customers.languages)
    assert len({c.phone for c in inventory.customers}) == len(inventory.customers)
    assert scenario.faults and scenario.rule_definitions


@pytest.mark.e2e
def test_a_short_scenario_is_detected_before_customers_call_and_nothing_else_is_flagged(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    scenario_file = tmp_path / "short.yaml"
    scenario_file.write_text(yaml.safe_dump(SHORT), encoding="utf-8")
    report = tmp_path / "report.json"
    token = f"simulator-{secrets.token_hex(12)}"
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with SmtpSink() as smtp, SmsGatewaySimulator() as gateway:
        env = {
            "FOREWARN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'forewarn.db'}",
            "FOREWARN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "FOREWARN_TOPIC_PREFIX": topic_prefix,
            "FOREWARN_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "FOREWARN_API_PORT": url.rsplit(":", 1)[1],
            "FOREWARN_API_TOKENS": f"simulator:admin:{token}",
            "FOREWARN_SMTP_HOST": smtp.host,
            "FOREWARN_SMTP_PORT": str(smtp.port),
            "FOREWARN_SMS_GATEWAY_URL": gateway.url,
            "FOREWARN_SMS_GATEWAY_TOKEN": gateway.credentials,
            "FOREWARN_RESOLVE_HOLD_MINUTES": "0",
            # Played 20 times faster, event time runs minutes ahead of the wall clock.
            "FOREWARN_MAX_CLOCK_SKEW_SECONDS": "3600",
            "FOREWARN_LOG_FORMAT": "json",
            "FOREWARN_LOG_LEVEL": "warning",
        }
        forewarn = Component("all", env, tmp_path, "all")
        with components(forewarn):
            forewarn.start()
            asyncio.run(wait_healthy(url, [forewarn]))
            simulate = subprocess.run(  # noqa: S603 - our own command line
                [
                    *(sys.executable, "-m", "forewarn", "simulate", str(scenario_file)),
                    *("--api", url, "--token", token, "--report", str(report)),
                    *("--assess-after", "3"),
                ],
                env={**env, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            headers = {"Authorization": f"Bearer {token}"}
            listed = httpx.get(f"{url}/v1/outages?limit=1000", headers=headers, timeout=10)
            assert forewarn.stop() == 0, forewarn.log()[-3000:]
        elapsed = time.monotonic() - started

    output = simulate.stdout + simulate.stderr
    assert simulate.returncode == 0, output + forewarn.log()[-3000:]
    result = orjson.loads(report.read_bytes())["result"]
    outages: list[dict[str, Any]] = listed.json()["items"]
    assert result["completed"] and result["telemetry_messages"] > 2000

    for fault in result["faults"]:
        if not fault["expects_outage"]:
            continue
        # Every fault that customers feel was found by telemetry, on its own scope...
        found = [
            o
            for o in outages
            if o["scope_id"] == fault["scope_id"]
            and o["rule_name"] != "calls-spike"
            and o["opened_at"] is not None
        ]
        assert found, (fault, outages)
        # ... before the first simulated customer got in touch about it.
        assert fault["first_call_at"] is not None, fault
        opened = min(o["opened_at"] for o in found)
        assert _time(opened) < _time(fault["first_call_at"]), (fault, found)

    flagged = {o["scope_id"] for o in outages}
    assert flagged <= FAULTY, flagged - FAULTY
    assert "north-hub-1-node-2" not in flagged and "cpe-00020" not in flagged  # the flapper
    assert "north-hub-3-node-2" not in flagged  # maintenance
    assert len(gateway.messages) > 0 and len(smtp.messages) > 0
    assert "detected" in output and "before the first call" in output
    assert elapsed < 90, f"took {elapsed:.0f}s"


def _time(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()
