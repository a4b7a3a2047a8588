"""Each component process serves its own metrics: detector, planner and notifier on their
metrics port (with `/healthz` and `/readyz`), the API on the API port and nowhere else.

The processes run against PostgreSQL and the embedded broker, started exactly as an operator
would start them, each with its own ports.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.net import free_port
from consumers.broker import TOPICS
from tests.e2e.processes import Component, components, tails
from tests.fixtures.kafka import TopicFactory
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

EXPECTED = {
    "detector": {
        "forewarn_events_consumed": "counter",
        "forewarn_assigned_partitions": "gauge",
        "forewarn_detection_latency_seconds": "histogram",
    },
    "planner": {
        "forewarn_outages": "gauge",
        "forewarn_update_overdue_outages": "gauge",
    },
    "notifier": {
        "forewarn_notifications_sent": "counter",
        "forewarn_outbox_pending": "gauge",
        "forewarn_provider_request_seconds": "histogram",
    },
    "api": {
        "forewarn_http_requests": "counter",
        "forewarn_http_request_seconds": "histogram",
    },
}
ADMIN_TOKEN = "ops-admin-token-0123456789"
# An e-mail address, or a phone number (7 or more digits, `+`, spaces or dashes between).
PERSONAL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|\+?\d(?:[ -]?\d){6,}")


@pytest.fixture
async def env(
    postgresql_url: str, kafka_bootstrap: str, topic_prefix: str, topic_factory: TopicFactory
) -> dict[str, str]:
    await topic_factory([f"{topic_prefix}{name}" for name in TOPICS], 2)
    return {
        "FOREWARN_DATABASE_URL": postgresql_url,
        "FOREWARN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "FOREWARN_TOPIC_PREFIX": topic_prefix,
        "FOREWARN_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FOREWARN_LOG_FORMAT": "json",
    }


async def answered(
    http: httpx.AsyncClient, url: str, procs: tuple[Component, ...]
) -> httpx.Response:
    """GET `url` until it answers 200; fail with the processes' logs after 45 s."""
    last: list[object] = [None]

    async def get() -> httpx.Response | None:
        try:
            last[0] = response = await http.get(url)
        except httpx.TransportError as exc:
            last[0] = exc
            return None
        return response if response.status_code == 200 else None

    return await eventually(
        get,
        f"{url} to answer 200",
        seconds=45,
        every=0.25,
        detail=lambda: f"last: {last[0]!r}\n{tails(procs, 2000)}",
    )


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_every_process_serves_its_own_metrics_and_the_api_only_on_its_port(
    env: dict[str, str], tmp_path: Path
) -> None:
    ports = {name: free_port() for name in EXPECTED}
    api_port = free_port()
    procs = {
        name: Component(
            name,
            {
                **env,
                "FOREWARN_METRICS_PORT": str(ports[name]),
                "FOREWARN_API_PORT": str(api_port),
                "FOREWARN_API_TOKENS": f"ops:admin:{ADMIN_TOKEN}",
            },
            tmp_path,
            name,
        )
        for name in EXPECTED
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    urls["api"] = f"http://127.0.0.1:{api_port}"
    with components(*procs.values()) as running:
        for proc in running:
            proc.start()
        scrapes: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=5) as http:
            for url in urls.values():
                await answered(http, f"{url}/healthz", running)
            # The detector is ready once it has joined its group and holds partitions.
            ready = await answered(http, f"{urls['detector']}/readyz", running)
            for name in ("planner", "notifier", "api"):
                await answered(http, f"{urls[name]}/readyz", running)
            for name, url in urls.items():
                scrapes[name] = (await http.get(f"{url}/metrics")).text
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{ports['api']}/metrics")
            # The API lists its settings token once it has seeded it (in the background).
            http.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"

            async def listed_with_ops() -> list[dict[str, Any]] | None:
                tokens = (await http.get(f"{urls['api']}/v1/tokens")).json()
                return tokens if any(t["name"] == "ops" for t in tokens) else None

            tokens = await eventually(
                listed_with_ops, "the settings token to be listed", seconds=10, every=0.25
            )
        for proc in running:
            assert proc.stop() == 0, proc.log()[-2000:]

    assert ready.json()["checks"]["consumers"] == {"ok": True}
    [ops] = [t for t in tokens if t["name"] == "ops"]
    assert (ops["role"], ops["source"], ops["revoked_at"]) == ("admin", "settings", None)
    for name, expected in EXPECTED.items():
        found = families(scrapes[name])
        types = {metric: found[metric].type for metric in expected if metric in found}
        assert types == expected, f"{name}: {sorted(found)}"
    assert "forewarn_http_requests" not in families(scrapes["detector"])
    assert "forewarn_events_consumed" not in families(scrapes["notifier"])
    detector = families(scrapes["detector"])["forewarn_assigned_partitions"]
    assert [s.labels for s in detector.samples] == [{"consumer": "detector"}]
    assert detector.samples[0].value >= 1
    requests = families(scrapes["api"])["forewarn_http_requests"]
    assert {"/healthz", "/readyz"} <= {s.labels["route"] for s in requests.samples}
    for name, text in scrapes.items():
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                for label, value in sample.labels.items():
                    assert not PERSONAL.search(value), (name, sample.name, label, value)
