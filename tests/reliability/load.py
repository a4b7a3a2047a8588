"""Sustained load: the whole stack as processes under a steady telemetry rate for minutes.

`forewarn api`, `detector`, `planner` and `notifier` run on PostgreSQL and the embedded broker
with a loopback SMTP server and SMS gateway, as in the storm, but nothing is killed: the point
is what a long steady run does to memory and lag. Every device reports once a second, paced in
ten ticks a second; every `FAULT_EVERY` seconds the next node's modems go down for
`FAULT_LASTS` seconds, so outages open, notices go out and outages resolve all along, and the
engine's per-scope state is created and forgotten again and again.

Every `SAMPLE_EVERY` seconds the sampler notes each process's resident memory (VmRSS) and the
detector's lag: messages produced minus the messages its `/metrics` says it consumed (the
broker's own end offsets are not trusted: see `consumers/broker.py`). `run_load` returns the
samples and what the database and the providers hold afterwards; the assertions live in
test_sustained_load.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from app.db import create_engine, session_factory
from app.net import free_port
from app.notifications.models import OutboxRow
from app.outages.models import Outage
from consumers.broker import TOPICS, ensure_topics
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.smtp_sink import SmtpSink
from tests.e2e.processes import Component, logged, tails, wait_healthy
from tests.fixtures.db import _empty_all_tables
from tests.reliability.processes import (
    Failed,
    api_component,
    scrape,
)
from tests.reliability.storm import (
    ADMIN_TOKEN,
    DOWN_FRACTION,
    RULE,
    Network,
    build_network,
    outage_record,
    row_record,
)
from tests.waiting import eventually

HUBS, NODES_PER_HUB = 4, 5
FAULT_EVERY, FAULT_LASTS, FIRST_FAULT = 15.0, 8.0, 5.0
SAMPLE_EVERY = 2.0
TICKS_PER_SECOND = 10
MEASURED = ("detector", "planner", "notifier", "api")
LOAD_RULE: dict[str, Any] = {**RULE, "name": "modems-down-under-load", "for": "2s"}


@dataclass(frozen=True)
class Fault:
    node: str
    start: float  # seconds after the telemetry started
    end: float


def schedule(nodes: list[str], seconds: float) -> list[Fault]:
    """A fault every FAULT_EVERY seconds on the next node, each over before the load ends."""
    faults: list[Fault] = []
    start = FIRST_FAULT
    while start + FAULT_LASTS + 2.0 <= seconds:
        faults.append(Fault(nodes[len(faults) % len(nodes)], start, start + FAULT_LASTS))
        start += FAULT_EVERY
    return faults


@dataclass
class Sample:
    at: float  # seconds after the telemetry started
    rss_mib: dict[str, float]
    produced: int
    consumed: int

    @property
    def lag(self) -> int:
        return max(self.produced - self.consumed, 0)


@dataclass
class LoadResult:
    rate: int
    seconds: float
    network: Network
    faults: list[Fault]
    samples: list[Sample]
    outages: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    sms_accepted: int
    emails_accepted: int
    produced: int
    consumed: int
    catch_up_seconds: float
    exit_codes: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)

    def affected(self, node: str) -> list[str]:
        return [
            c["id"]
            for c in self.network.customers.values()
            if self.network.device_node[c["devices"][0]] == node
        ]


def rss_mib(proc: Component) -> float:
    """Resident memory of the process, from /proc (Linux)."""
    assert proc.process is not None
    for line in Path(f"/proc/{proc.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise Failed(f"no VmRSS for {proc.log_path.name}")


def steady_growth(values: list[float]) -> float:
    """Growth after the warm-up: the median of the last quarter minus that of the second.

    The first quarter is warm-up (imports done, pools and caches filling); medians make one
    sample taken in the middle of a garbage collection or a big batch count for little.
    """
    quarter = max(len(values) // 4, 1)
    second = values[quarter : 2 * quarter] or values[:1]
    last = values[-quarter:]
    return statistics.median(last) - statistics.median(second)


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    network: Network,
    faults: list[Fault],
    started: float,
    seconds: float,
    produced: list[int],
) -> None:
    """Every reporting device once a second, in TICKS_PER_SECOND even slices, until `seconds`."""
    reporting = network.reporting()
    down: dict[str, set[str]] = {}
    for node in {f.node for f in faults}:
        on_node = sorted(d for d, n in reporting if n == node)
        down[node] = set(on_node[: int(len(on_node) * DOWN_FRACTION)])
    slices = [reporting[i::TICKS_PER_SECOND] for i in range(TICKS_PER_SECOND)]
    tick = 0
    while True:
        due = started + tick / TICKS_PER_SECOND
        if due - started >= seconds:
            return
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        elapsed = time.monotonic() - started
        failing = {f.node for f in faults if f.start <= elapsed < f.end}
        ts = int(time.time() * 1000)
        for device, node in slices[tick % TICKS_PER_SECOND]:
            value = not (node in failing and device in down[node])
            message = {"ts": ts, "device_id": device, "metric": "cpe.online", "value": value}
            await producer.send(topic, orjson.dumps(message), key=node.encode())
        produced[0] += len(slices[tick % TICKS_PER_SECOND])
        tick += 1


async def consumed(client: httpx.AsyncClient, metrics_url: str, topic: str) -> int:
    text = (await client.get(metrics_url)).text
    samples = scrape(text, "forewarn_events_consumed_total")
    return int(sum(v for labels, v in samples.items() if dict(labels).get("topic") == topic))


async def run_load(
    *, database_url: str, bootstrap: str, log_dir: Path, rate: int, seconds: float
) -> LoadResult:
    """Run the stack under `rate` readings a second for `seconds`; return what happened."""
    per_node = max(rate // (HUBS * NODES_PER_HUB), 10)
    network = build_network(per_node, hubs=HUBS, nodes_per_hub=NODES_PER_HUB)
    nodes = [n["id"] for n in network.inventory["nodes"] if n["level"] == "node"]
    faults = schedule(nodes, seconds)
    prefix = f"load{int(time.time()) % 100_000}."
    telemetry = f"{prefix}telemetry"
    await ensure_topics(bootstrap, [f"{prefix}{name}" for name in TOPICS], 4)
    engine = create_engine(database_url)
    await _empty_all_tables(engine)
    sessions = session_factory(engine)
    gateway, smtp = SmsGatewaySimulator(), SmtpSink()
    gateway.start()
    smtp.start()
    env = {
        "FOREWARN_DATABASE_URL": database_url,
        "FOREWARN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FOREWARN_TOPIC_PREFIX": prefix,
        "FOREWARN_API_TOKENS": f"load:admin:{ADMIN_TOKEN}",
        "FOREWARN_LOG_FORMAT": "json",
        "FOREWARN_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FOREWARN_CORRELATE_MIN_CHILDREN": "0",
        "FOREWARN_SMS_GATEWAY_URL": gateway.url,
        "FOREWARN_SMS_GATEWAY_TOKEN": gateway.credentials,
        "FOREWARN_SMTP_HOST": smtp.host,
        "FOREWARN_SMTP_PORT": str(smtp.port),
        "FOREWARN_SMS_RATE_PER_SECOND": "2000",
        "FOREWARN_EMAIL_RATE_PER_SECOND": "500",
        "FOREWARN_RESOLVE_HOLD_MINUTES": "0",
        "FOREWARN_SURVEY_AFTER_MINUTES": "0",
    }
    api, api_url = api_component(env, log_dir)
    ports = {role: free_port() for role in MEASURED if role != "api"}
    procs: dict[str, Component] = {"api": api}
    for role, port in ports.items():
        procs[role] = Component(role, {**env, "FOREWARN_METRICS_PORT": str(port)}, log_dir, role)
    metrics_url = f"http://127.0.0.1:{ports['detector']}/metrics"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    produced = [0]
    samples: list[Sample] = []
    publisher: asyncio.Task[None] | None = None
    exit_codes: dict[str, int] = {}
    try:
        api.start()
        await wait_healthy(api_url, [api])
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=120) as client:
            (await client.put("/v1/inventory", json=network.inventory)).raise_for_status()
            (await client.post("/v1/rules", json=LOAD_RULE)).raise_for_status()
        for role in ports:
            procs[role].start()
        everyone = list(procs.values())
        await eventually(
            lambda: logged(procs["detector"], "partitions assigned"),
            "the detector to join its group",
            seconds=90,
            detail=lambda: tails(everyone),
        )
        await producer.start()
        started = time.monotonic()
        publisher = asyncio.create_task(
            publish(producer, telemetry, network, faults, started, seconds, produced)
        )
        async with httpx.AsyncClient(timeout=10) as client:
            while not publisher.done():
                await asyncio.sleep(SAMPLE_EVERY)
                for proc in everyone:
                    if not proc.running:
                        raise Failed(f"{proc.log_path.name} exited under load\n{tails(everyone)}")
                samples.append(
                    Sample(
                        at=round(time.monotonic() - started, 1),
                        rss_mib={role: rss_mib(procs[role]) for role in MEASURED},
                        produced=produced[0],
                        consumed=await consumed(client, metrics_url, telemetry),
                    )
                )
            await publisher
            await producer.flush()
            finished = time.monotonic()

            async def caught_up() -> bool:
                return await consumed(client, metrics_url, telemetry) >= produced[0]

            await eventually(
                caught_up, "the detector to catch up", seconds=60, detail=lambda: tails(everyone)
            )
            final = await consumed(client, metrics_url, telemetry)
            catch_up = time.monotonic() - finished

        async def drained() -> bool:
            async with sessions() as session:
                outages = list(await session.scalars(select(Outage)))
                waiting = await session.scalar(
                    select(OutboxRow.id).where(OutboxRow.state.in_(("pending", "sending")))
                )
            return (
                len(outages) >= len(faults)
                and all(o.state == "resolved" for o in outages)
                and (waiting is None)
            )

        await eventually(
            drained,
            "every outage resolved, the outbox drained",
            seconds=120,
            every=1.0,
            detail=lambda: tails(everyone),
        )
        await asyncio.sleep(1.0)  # a late duplicate, if any, would arrive now
        for role in ports:
            exit_codes[role] = procs[role].stop()
        exit_codes["api"] = api.stop()
        async with sessions() as session:
            outages = list(await session.scalars(select(Outage).order_by(Outage.opened_at)))
            rows = list(await session.scalars(select(OutboxRow)))
    except BaseException:
        for proc in procs.values():
            proc.kill()
        raise
    finally:
        if publisher is not None and not publisher.done():
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await publisher
        await producer.stop()
        gateway.stop()
        smtp.stop()
        await engine.dispose()
    return LoadResult(
        rate=rate,
        seconds=seconds,
        network=network,
        faults=faults,
        samples=samples,
        outages=[outage_record(o) for o in outages],
        rows=[row_record(r) for r in rows],
        sms_accepted=len(gateway.messages),
        emails_accepted=len(smtp.messages),
        produced=produced[0],
        consumed=final,
        catch_up_seconds=round(catch_up, 1),
        exit_codes=exit_codes,
    )
