"""Operations: HTTP metrics by route template, the body size limit, and the probe server of
processes that do not serve the API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.limits import MAX_BODY_BYTES
from app.net import free_port
from app.settings import Settings
from consumers.telemetry import Detector
from forewarn.cli import app as cli
from forewarn.probes import MetricsPortError, bind_metrics_port, create_probe_app, process_checks
from forewarn.runtime import Runtime, run_until_stopped
from tests.integration.api_client import ClientFactory, api_settings, client_factory
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def client(database_url: str, sessions: async_sessionmaker[AsyncSession]) -> ClientFactory:
    return client_factory(api_settings(database_url), sessions)


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample labels -> value of one series (`name` as written, e.g. `..._total`)."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_requests_are_counted_by_route_template_and_never_by_id(
    client: ClientFactory,
) -> None:
    async with client() as api:
        await api.get("/v1/outages/out_0123456789abcdef")
        await api.get("/v1/outages/out_fedcba9876543210")
        await api.get("/v1/rules")
        await api.get("/wp-login.php")
        await api.request("BREW", "/v1/rules")
        text = (await api.get("/metrics")).text

    counted = samples(text, "forewarn_http_requests_total")
    outage = "/v1/outages/{outage_id}"
    assert counted[(("method", "GET"), ("route", outage), ("status", "404"))] == 2
    assert counted[(("method", "GET"), ("route", "/v1/rules"), ("status", "200"))] == 1
    assert counted[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert counted[(("method", "other"), ("route", "/v1/rules"), ("status", "405"))] == 1
    timed = samples(text, "forewarn_http_request_seconds_count")
    assert timed[(("method", "GET"), ("route", outage))] == 2
    assert "out_0123456789abcdef" not in text and "wp-login" not in text
    [pool] = samples(text, "forewarn_db_pool_connections_in_use").values()
    assert pool >= 0


async def test_a_body_over_16_mib_is_refused_with_413_in_the_error_shape(
    client: ClientFactory,
) -> None:
    too_big = b"x" * (MAX_BODY_BYTES + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 1 << 20):
            yield too_big[start : start + (1 << 20)]

    async with client() as api:
        declared = await api.put(
            "/v1/inventory", content=too_big, headers={"Content-Type": "application/json"}
        )
        streamed = await api.put(
            "/v1/inventory", content=chunks(), headers={"Content-Type": "application/json"}
        )
        fits = await api.put("/v1/inventory", json={"nodes": []})

    for refused in (declared, streamed):
        assert refused.status_code == 413, refused.text
        assert refused.json()["detail"] == "request body too large"
        assert refused.json()["errors"][0]["field"] == "body"
    assert fits.status_code == 200


async def test_the_probe_app_names_the_detector_without_partitions_as_not_ready(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = Settings(database_url=database_url)
    detector = Detector(settings=settings, sessions=sessions)
    registry = CollectorRegistry()
    checks = process_checks(settings=settings, sessions=sessions, detectors=[detector])
    probes = create_probe_app(checks=checks, registry=registry)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=probes), base_url="http://probe"
    ) as http:
        waiting = await http.get("/readyz")
        detector.assigned.add("telemetry-0")  # type: ignore[arg-type]
        ready = await http.get("/readyz")
        health = await http.get("/healthz")
        metrics = await http.get("/metrics")

    assert waiting.status_code == 503
    assert waiting.json()["failing"] == ["consumers"]
    assert waiting.json()["checks"]["database"] == {"ok": True}
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert health.json() == {"status": "ok"}
    assert metrics.headers["content-type"].startswith("text/plain")


def test_a_metrics_port_in_use_is_refused_naming_the_setting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortError, match=f"FOREWARN_METRICS_PORT.*127.0.0.1:{port}"):
            bind_metrics_port("127.0.0.1", port)


async def test_a_process_without_the_api_serves_probes_on_the_metrics_port_until_stopped(
    database_url: str, db_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    port = free_port()
    settings = Settings(database_url=database_url, metrics_port=port)
    runtime = Runtime(settings, db_engine, sessions)
    stop = asyncio.Event()
    running = asyncio.create_task(run_until_stopped(runtime, ("notifier",), stop))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:

        async def scraped() -> httpx.Response | None:
            try:
                return await http.get("/metrics")
            except httpx.ConnectError:
                return None

        metrics = await eventually(scraped, "the probe server to listen", seconds=10, every=0.05)
        ready = await http.get("/readyz")
    stop.set()
    await asyncio.wait_for(running, 20)

    assert "forewarn_outbox_pending" in metrics.text
    # (That an API-less process exports no HTTP metrics is checked with real processes in
    # tests/e2e/test_metrics_processes.py: this test process shares one registry with others.)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"database", "broker"}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), 1).close()


def test_the_cli_stops_with_the_setting_name_when_the_metrics_port_is_taken(
    cli_database: Path,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        runner = CliRunner(
            env={
                "FOREWARN_DATABASE_URL": f"sqlite+aiosqlite:///{cli_database}",
                "FOREWARN_METRICS_PORT": str(port),
            }
        )
        result = runner.invoke(cli, ["notifier"])
    assert result.exit_code == 2, result.output
    assert "FOREWARN_METRICS_PORT" in result.output
