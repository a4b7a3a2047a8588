"""The storm: the whole stack as processes, with outages to find and faults everywhere.

`forewarn api`, `detector`, `planner` and two `notifier`s run on PostgreSQL and the embedded
broker, with a loopback SMTP server and SMS gateway. Telemetry, stamped with the wall clock,
takes three nodes down and brings them back; meanwhile each of the detector, the planner and
one notifier is killed -9 twice at a random moment and restarted, the SMS gateway answers
500, then 429, then too slowly (a timeout), and the SMTP server refuses mail for a while.

`run_storm` returns what happened (`StormResult`): the outages and outbox rows as the database
holds them afterwards, every SMS and e-mail the providers accepted, the process logs. The
assertions live in test_storm.py and test_logs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory
from app.notifications.models import OutboxRow
from app.outages.models import Outage
from consumers.broker import TOPICS, EmbeddedBroker, ensure_topics
from notifiers.dispatcher import ClaimedRow, idempotency_key
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.smtp_sink import SmtpSink
from tests.e2e.processes import Component, json_lines, logged, tails, wait_healthy
from tests.factories import node_rule
from tests.fixtures.db import _empty_all_tables
from tests.reliability.processes import (
    Failed,
    api_component,
)
from tests.reliability.services import LocalPostgres, freeze, thaw
from tests.waiting import eventually

ADMIN_TOKEN = "storm-admin-token-0123456789"
LINK_SECRET = "storm-link-secret"
HUBS, NODES_PER_HUB = 2, 4
DOWN_FRACTION = 0.8
LANGUAGES = ("en", "de", "es", "vi", "hi")
CHANNELS = (("sms", "email"), ("sms", "email"), ("sms",), ("email",))
# The three nodes that fail, and when (seconds after the telemetry starts): down from, up at.
# Long enough to be detected after the worst run of faults before them: a detector killed at
# 14 s, its replacement's group join held up by the broker freeze (to 28 s) and its first
# reconcile by the PostgreSQL restart (to about 40 s); after a restart a pending condition
# takes the rule's `for` again (docs/operations.md), so detection can come at about 47 s.
FAULTS = {"hub-1-node-2": (4.0, 55.0), "hub-1-node-3": (4.0, 55.0), "hub-2-node-1": (14.0, 65.0)}
# When the nodes start coming back: the faults of the clearing phase begin here.
CLEARING = 53.0
# A TV outage leaves both channels working (e-mail needs `internet`, SMS `mobile`), so every
# customer is told on every channel they listed.
RULE: dict[str, Any] = node_rule(for_="6s", services=["tv"])


@dataclass
class Network:
    inventory: dict[str, Any]
    device_node: dict[str, str]
    customers: dict[str, dict[str, Any]]
    # Devices that never report telemetry (a set-top box, a phone line): their customers are
    # affected by an outage of their node all the same.
    silent: set[str] = field(default_factory=set)

    def reporting(self) -> list[tuple[str, str]]:
        """(device, node) of every device that reports telemetry."""
        return [(d, n) for d, n in self.device_node.items() if d not in self.silent]

    def affected(self) -> dict[str, list[str]]:
        """Faulty node -> the customers on it."""
        out: dict[str, list[str]] = {node: [] for node in FAULTS}
        for customer in self.customers.values():
            node = self.device_node[customer["devices"][0]]
            if node in out:
                out[node].append(customer["id"])
        return out


def build_network(
    per_node: int, *, hubs: int = HUBS, nodes_per_hub: int = NODES_PER_HUB, silent_per_node: int = 0
) -> Network:
    """One region of `hubs` hubs of `nodes_per_hub` nodes; on each node `per_node` modems that
    report and `silent_per_node` set-top boxes that do not, a customer on each device."""
    nodes: list[dict[str, Any]] = [{"id": "north", "level": "region"}]
    devices: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []
    device_node: dict[str, str] = {}
    silent: set[str] = set()
    for h in range(1, hubs + 1):
        hub = f"hub-{h}"
        nodes.append({"id": hub, "level": "hub", "parent": "north"})
        for n in range(1, nodes_per_hub + 1):
            node = f"{hub}-node-{n}"
            nodes.append({"id": node, "level": "node", "parent": hub})
            for k in range(per_node + silent_per_node):
                index = len(devices) + 1
                device = f"cpe-{index:06d}" if k < per_node else f"stb-{index:06d}"
                devices.append({"id": device, "node": node, "services": ["internet", "tv"]})
                device_node[device] = node
                if k >= per_node:
                    silent.add(device)
                customers.append(
                    {
                        "id": f"c-{index:06d}",
                        "name": f"Customer {index}",
                        "phone": f"+49151{index:08d}",
                        "email": f"customer{index}@example.net",
                        "language": LANGUAGES[index % len(LANGUAGES)],
                        "timezone": "UTC",
                        "channels": list(CHANNELS[index % len(CHANNELS)]),
                        "devices": [device],
                    }
                )
    return Network(
        inventory={"nodes": nodes, "devices": devices, "customers": customers},
        device_node=device_node,
        customers={c["id"]: c for c in customers},
        silent=silent,
    )


@dataclass
class StormResult:
    """What the storm left behind, for the assertions."""

    seed: int
    scale: int
    network: Network
    outages: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    sms: list[dict[str, str]]
    sms_requests: int
    emails: list[dict[str, str]]
    timeline: list[tuple[float, str]]
    log_dir: Path
    exit_codes: dict[str, int]
    figures: dict[str, Any]
    api: Component
    api_url: str
    gateway_auth_token: str
    public_base_url: str

    def logs(self) -> dict[str, str]:
        return {p.name: p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log"))}


@dataclass
class Stack:
    """The running processes, by role; a role's process is replaced when it is restarted."""

    env: dict[str, str]
    log_dir: Path
    procs: dict[str, Component] = field(default_factory=dict)
    all: list[Component] = field(default_factory=list)
    incarnations: dict[str, int] = field(default_factory=dict)

    def start(self, role: str, command: str, extra: dict[str, str] | None = None) -> Component:
        number = self.incarnations.get(role, 0) + 1
        self.incarnations[role] = number
        proc = Component(command, {**self.env, **(extra or {})}, self.log_dir, f"{role}-{number}")
        self.procs[role] = proc
        self.all.append(proc)
        return proc.start()

    def kill(self, role: str) -> None:
        self.procs[role].kill()


def customer_rows_expected(network: Network, outage_of: dict[str, str]) -> set[tuple[str, ...]]:
    """(customer, outage, stage, channel) of every notice the storm must deliver."""
    expected: set[tuple[str, ...]] = set()
    for node, customers in network.affected().items():
        for customer_id in customers:
            for stage in ("detected", "resolved"):
                for channel in network.customers[customer_id]["channels"]:
                    expected.add((customer_id, outage_of.get(node, f"<{node}>"), stage, channel))
    return expected


async def publish_telemetry(
    producer: AIOKafkaProducer,
    topic: str,
    network: Network,
    started: float,
    stop: asyncio.Event,
    counter: list[int],
) -> None:
    """Every modem reports every second, stamped now; faulty nodes' modems report down."""
    reporting = network.reporting()
    down_devices = {}
    for node in FAULTS:
        on_node = sorted(d for d, n in reporting if n == node)
        down_devices[node] = set(on_node[: int(len(on_node) * DOWN_FRACTION)])
    while not stop.is_set():
        elapsed = time.monotonic() - started
        ts = int(time.time() * 1000)
        for device, node in reporting:
            window = FAULTS.get(node)
            down = (
                window is not None
                and window[0] <= elapsed < window[1]
                and device in down_devices[node]
            )
            message = {"ts": ts, "device_id": device, "metric": "cpe.online", "value": not down}
            await producer.send(topic, orjson.dumps(message), key=node.encode())
            counter[0] += 1
        await producer.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[Any], list[Any]]:
    async with sessions() as session:
        outages = list(await session.scalars(select(Outage).order_by(Outage.started_at)))
        rows = list(await session.scalars(select(OutboxRow).order_by(OutboxRow.id)))
    return outages, rows


def outage_record(outage: Outage) -> dict[str, Any]:
    """What the assertions need of an outage row, detached from its session."""
    return {
        "id": outage.id,
        "scope_id": outage.scope_id,
        "state": outage.state,
        "started_at": outage.started_at,
        "opened_at": outage.opened_at,
        "resolved_at": outage.resolved_at,
    }


def row_record(row: OutboxRow) -> dict[str, Any]:
    """What the assertions need of an outbox row, with the idempotency key it was sent with."""
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "outage_id": row.outage_id,
        "stage": row.stage,
        "sequence": row.sequence,
        "channel": row.channel,
        "language": row.language,
        "state": row.state,
        "attempts": row.attempts,
        "provider_id": row.provider_id,
        "last_error": row.last_error,
        "key": idempotency_key(
            ClaimedRow(
                id=row.id,
                customer_id=row.customer_id,
                outage_id=row.outage_id,
                stage=row.stage,
                channel=row.channel,
                language=row.language,
                attempts=row.attempts,
                sequence=row.sequence,
                maintenance_id=row.maintenance_id,
            )
        ),
    }


# What the storm's own database reads see while PostgreSQL is down: a poll that meets one
# simply answers "not yet".
DATABASE_DOWN = (DBAPIError, OSError)


async def run_storm(
    *,
    database_url: str,
    bootstrap: str,
    log_dir: Path,
    scale: int,
    seed: int,
    customers_per_node: int | None = None,
    broker: EmbeddedBroker | None = None,
) -> StormResult:
    """Run the storm; return what happened. Every process but the API is stopped after it.

    Each node has 40 × `scale` modems that report and a customer on each; `customers_per_node`
    adds customers whose devices do not report, up to that many per node. `broker` is the
    embedded broker the storm may freeze (None: no broker fault).
    """
    rng = random.Random(seed)  # noqa: S311 - the kill moments, reproducible from the seed
    modems = 40 * scale
    network = build_network(
        per_node=modems, silent_per_node=max((customers_per_node or 0) - modems, 0)
    )
    postgres, postgres_skipped = LocalPostgres.find(database_url)
    prefix = f"storm{seed % 100_000}."
    await ensure_topics(bootstrap, [f"{prefix}{name}" for name in TOPICS], 4)
    engine = create_engine(database_url)
    await _empty_all_tables(engine)
    sessions = session_factory(engine)
    timeline: list[tuple[float, str]] = []
    gateway = SmsGatewaySimulator()
    smtp = SmtpSink()
    gateway.start()
    smtp.start()
    api_env = {
        "FOREWARN_DATABASE_URL": database_url,
        "FOREWARN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FOREWARN_TOPIC_PREFIX": prefix,
        "FOREWARN_API_TOKENS": f"storm:admin:{ADMIN_TOKEN}",
        "FOREWARN_SMS_GATEWAY_TOKEN": gateway.credentials,
        "FOREWARN_LOG_FORMAT": "json",
    }
    api, api_url = api_component(api_env, log_dir, "api-1")
    env = {
        **api_env,
        "FOREWARN_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FOREWARN_CORRELATE_MIN_CHILDREN": "0",
        "FOREWARN_METRICS_PORT": "0",  # five processes on one host
        "FOREWARN_PUBLIC_BASE_URL": api_url,
        "FOREWARN_LINK_SECRET": LINK_SECRET,
        "FOREWARN_SMS_GATEWAY_URL": gateway.url,
        "FOREWARN_SMTP_HOST": smtp.host,
        "FOREWARN_SMTP_PORT": str(smtp.port),
        "FOREWARN_SMS_RATE_PER_SECOND": "2000",
        "FOREWARN_EMAIL_RATE_PER_SECOND": "500",
        "FOREWARN_DISPATCH_BATCH_SIZE": "50",
        # Longer than one batch can take (one round of 10 s SMS timeouts), so a live notifier's
        # claims never expire under it; a killed one's are settled 15 s after its claim.
        "FOREWARN_DISPATCH_LEASE_SECONDS": "15",
        "FOREWARN_CIRCUIT_RESET_SECONDS": "2",
        "FOREWARN_RESOLVE_HOLD_MINUTES": "0",
        "FOREWARN_SURVEY_AFTER_MINUTES": "0",
    }
    api.env.update({"FOREWARN_PUBLIC_BASE_URL": api_url, "FOREWARN_LINK_SECRET": LINK_SECRET})
    stack = Stack(env=env, log_dir=log_dir)
    stack.procs["api"] = api
    stack.all.append(api)
    notifier_env = {"FOREWARN_LOG_LEVEL": "debug"}  # a log line per notice, for test_logs
    began = time.monotonic()
    started = began
    telemetry_stop = asyncio.Event()
    sent_counter = [0]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    publisher: asyncio.Task[None] | None = None
    injectors: list[asyncio.Task[None]] = []
    exit_codes: dict[str, int] = {}

    def note(what: str) -> None:
        timeline.append((round(time.monotonic() - started, 1), what))

    try:
        api.start()
        await wait_healthy(api_url, [api])
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as client:
            (await client.put("/v1/inventory", json=network.inventory)).raise_for_status()
            (await client.post("/v1/rules", json=RULE)).raise_for_status()
        stack.start("detector", "detector")
        stack.start("planner", "planner")
        stack.start("notifier-a", "notifier", notifier_env)
        stack.start("notifier-b", "notifier", notifier_env)
        await eventually(
            lambda: logged(stack.procs["detector"], "partitions assigned"),
            "the detector to join its group",
            seconds=90,
            detail=lambda: tails(stack.all),
        )
        startup_seconds = time.monotonic() - began
        await producer.start()
        started = time.monotonic()
        started_wall = datetime.now(UTC)
        note("telemetry starts")
        publisher = asyncio.create_task(
            publish_telemetry(
                producer,
                f"{prefix}telemetry",
                network,
                started,
                telemetry_stop,
                sent_counter,
            )
        )
        storm = Storm(
            rng,
            scale,
            stack,
            gateway,
            smtp,
            sessions,
            notifier_env,
            started,
            note,
            postgres,
            broker,
        )
        lookups = [
            lookup(api_url, phone, 30.0 + i, storm)
            for i, phone in enumerate(lookup_phones(network))
        ]
        killers = [
            asyncio.create_task(c) for c in storm.kills() + storm.infrastructure_faults() + lookups
        ]
        faults = [asyncio.create_task(c) for c in storm.provider_faults()]
        injectors = killers + faults

        async def all_resolved() -> bool:
            try:
                outages, _ = await snapshot(sessions)
            except DATABASE_DOWN:
                return False
            resolved = {o.scope_id for o in outages if o.state == "resolved"}
            return resolved >= set(FAULTS)

        await eventually(
            all_resolved,
            "every outage to resolve",
            seconds=120,
            every=1,
            detail=lambda: tails(stack.all),
        )
        note("all outages resolved")
        telemetry_stop.set()
        await publisher
        await asyncio.wait_for(asyncio.gather(*killers), 60)
        await storm.stop()
        await asyncio.wait_for(asyncio.gather(*faults), 120)
        await storm.stop()  # anything a fault switched on as it ended
        note("provider faults over")

        outages, _ = await snapshot(sessions)
        outage_of = {o.scope_id: o.id for o in outages}
        expected = customer_rows_expected(network, outage_of)

        async def drained() -> bool:
            try:
                _, rows = await snapshot(sessions)
            except DATABASE_DOWN:
                return False
            waiting = [r for r in rows if r.state in ("pending", "sending")]
            return len(rows) >= len(expected) and not waiting

        await eventually(
            drained,
            "the outbox to drain",
            seconds=180 + 30 * scale,
            every=1,
            detail=lambda: tails(stack.all),
        )
        note("outbox drained")
        drain_seconds = timeline[-1][0] - next(
            t for t, w in timeline if w == "all outages resolved"
        )
        await asyncio.sleep(2.0)  # a late duplicate, if any, would arrive now
        for role in ("detector", "planner", "notifier-a", "notifier-b"):
            exit_codes[role] = stack.procs[role].stop()
        outages, rows = await snapshot(sessions)
        attempts = [r.attempts for r in rows]
        async with sessions() as session:
            contacts = await session.scalar(
                select(func.count()).select_from(Outage).where(Outage.first_contact_at.is_not(None))
            )
    except BaseException:
        for proc in stack.all:
            proc.kill()
        raise
    finally:
        telemetry_stop.set()
        for injector in injectors:
            injector.cancel()
        if publisher is not None and not publisher.done():
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await publisher
        await producer.stop()
        gateway.stop()
        smtp.stop()
        await engine.dispose()
    figures = {
        "seed": seed,
        "customers": len(network.customers),
        "affected_customers": sum(len(c) for c in network.affected().values()),
        "outages": len(outages),
        "notices_expected": len(expected),
        "telemetry_messages": sent_counter[0],
        "sms_accepted": len(gateway.messages),
        "sms_requests": gateway.requests,
        "emails_accepted": len(smtp.messages),
        "outbox_rows": len(rows),
        "outbox_states": count_by(rows, lambda r: r.state),
        "retries": sum(attempts) - len(attempts),
        "max_attempts_of_a_notice": max(attempts, default=0),
        **notifier_log_figures(log_dir),
        "lookups_answered_503": storm.lookups_503,
        "faults_skipped": {
            "postgresql_restart": postgres_skipped,
            "broker_freeze": "" if broker is not None else "no embedded broker given",
        },
        "outages_with_a_first_contact": contacts,
        "startup_seconds": round(startup_seconds, 1),
        "telemetry_to_all_resolved_seconds": next(
            t for t, w in timeline if w == "all outages resolved"
        ),
        "drain_seconds": round(drain_seconds, 1),
        "total_seconds": round(time.monotonic() - began, 1),
        "process_incarnations": dict(stack.incarnations),
    }
    # From the moment a node's modems went down to the moment its outage opened (for: 6 s).
    figures["detection_seconds"] = {
        o.scope_id: round(
            (o.opened_at - started_wall - timedelta(seconds=FAULTS[o.scope_id][0])).total_seconds(),
            1,
        )
        for o in outages
        if o.opened_at is not None and o.scope_id in FAULTS
    }
    return StormResult(
        seed=seed,
        scale=scale,
        network=network,
        outages=[outage_record(o) for o in outages],
        rows=[row_record(r) for r in rows],
        sms=[{"sid": m.sid, "to": m.to, "body": m.body} for m in gateway.messages],
        sms_requests=gateway.requests,
        emails=[
            {
                "key": str(m["X-Forewarn-Notice"]),
                "to": str(m["To"]),
                "subject": str(m["Subject"]),
            }
            for m in smtp.messages
        ],
        timeline=timeline,
        log_dir=log_dir,
        exit_codes=exit_codes,
        figures=figures,
        api=api,
        api_url=api_url,
        gateway_auth_token=gateway.token,
        public_base_url=api_url,
    )


@dataclass
class Storm:
    """The fault injectors, sharing the stack, the providers and the clock of the run."""

    rng: random.Random
    scale: int
    stack: Stack
    gateway: SmsGatewaySimulator
    smtp: SmtpSink
    sessions: async_sessionmaker[AsyncSession]
    notifier_env: dict[str, str]
    started: float
    note: Callable[[str], None]
    postgres: LocalPostgres | None = None
    broker: EmbeddedBroker | None = None
    lookups_503: int = 0
    # One lock per process role and per provider: a fault starts once the last one is over.
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Set once every outage is resolved: provider faults still waiting for traffic give up.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def at(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds - self.elapsed()))

    async def at_unless_stopping(self, seconds: float) -> bool:
        """Wait until `seconds` after the start; False if the storm is over first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), max(0.0, seconds - self.elapsed()))
        return not self.stopping.is_set()

    async def kill_and_restart(self, role: str) -> None:
        """kill -9 the role's process; start a new one 1.5 s later."""
        command = "notifier" if role.startswith("notifier") else role
        extra = self.notifier_env if command == "notifier" else None
        async with self.locks.setdefault(role, asyncio.Lock()):
            self.note(f"kill -9 {self.stack.procs[role].log_path.stem}")
            self.stack.kill(role)
            await asyncio.sleep(1.5)
            proc = self.stack.start(role, command, extra)
            self.note(f"restarted as {proc.log_path.stem}")

    async def kill_at_random(self, role: str, windows: tuple[tuple[float, float], ...]) -> None:
        for window in windows:
            await self.at(self.rng.uniform(*window))
            await self.kill_and_restart(role)

    async def until(self, check: Callable[[], Any], seconds: float) -> bool:
        """Wait until `check()` is truthy (it may be a coroutine); False if `seconds` pass or
        the storm stops first."""
        try:
            await eventually(lambda: self.stopping.is_set() or check(), "a fault", seconds=seconds)
        except AssertionError:
            return False
        return not self.stopping.is_set()

    async def refused_emails(self, stage: str) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(
                    OutboxRow.channel == "email",
                    OutboxRow.stage == stage,
                    OutboxRow.last_error == "smtp_451",
                )
            )
        return int(count or 0)

    async def smtp_refuses(self, at: float, stage: str, seconds: float = 30.0) -> None:
        """Refuse mail from `at` until a few `stage` e-mails were refused (or `seconds` pass)."""
        if not await self.at_unless_stopping(at):
            return
        async with self.locks.setdefault("smtp", asyncio.Lock()):
            self.note("SMTP: 451 on")
            self.smtp.refuse(True)
            refused = await self.until(lambda: self._refused_at_least(stage, 5), seconds)
            await asyncio.sleep(1.0)
            self.smtp.refuse(False)
            self.note(f"SMTP: 451 off ({'after refusing' if refused else 'no'} {stage} e-mails)")

    async def _refused_at_least(self, stage: str, count: int) -> bool:
        try:
            return await self.refused_emails(stage) >= count
        except DATABASE_DOWN:
            return False

    async def sms_fails(self, at: float, count: int, status: int) -> bool:
        """Answer the next `count` SMS requests after `at` with `status`; wait until they came."""
        if not await self.at_unless_stopping(at):
            return False
        async with self.locks.setdefault("sms", asyncio.Lock()):
            base = self.gateway.requests
            self.note(f"SMS gateway: {status} to the next {count} requests")
            self.gateway.fail_next(count, status)
            return await self.until(lambda: self.gateway.requests >= base + count, 40)

    async def detected_phase_providers(self) -> None:
        """As the detected notices flow: answers too slow for the 10 s client timeout, with a
        notifier killed while its SMS calls hang (the e-mails of its batch went out, unrecorded);
        then the SMTP server refuses for a while, and the gateway answers 500, then 429."""
        await self.at(3.0)
        base = self.gateway.requests
        self.note("SMS gateway: 11 s delay on")
        self.gateway.set_delay(11.0)
        if await self.until(lambda: self.gateway.requests >= base + 5, 60):
            await asyncio.sleep(self.rng.uniform(0.5, 3.0))
            await self.kill_and_restart("notifier-a")
        self.gateway.set_delay(0.0)
        self.note(f"SMS gateway: delay off after {self.gateway.requests - base} slow requests")
        refusing = asyncio.create_task(self.smtp_refuses(0.0, "detected", 20))
        # Fixed sizes: with the gateway failing, the breaker lets one trial call through
        # every reset (2 s), so a larger count would only stretch the storm.
        await self.sms_fails(0.0, 30, 500)
        await self.sms_fails(0.0, 20, 429)
        await refusing

    async def resolved_phase_providers(self) -> None:
        await self.sms_fails(CLEARING, 30, 500)

    async def smtp_down_after_refusing(self) -> None:
        """451s as the resolved e-mails start, then the SMTP server is down altogether:
        connections refused for 15 s (a minute at scale 4 and more), then back on its port."""
        await self.smtp_refuses(CLEARING, "resolved")
        seconds = 15.0 * min(self.scale, 4)
        async with self.locks.setdefault("smtp", asyncio.Lock()):
            self.note(f"SMTP server: down for {seconds:.0f} s")
            self.smtp.stop()
            await asyncio.sleep(seconds)
            self.smtp.start()
            self.note("SMTP server: up again")

    async def postgres_restart(self, window: tuple[float, float], down: float = 5.0) -> None:
        """Stop PostgreSQL (fast: every session cut) at a random moment; start it `down` s later."""
        if self.postgres is None:
            return
        await self.at(self.rng.uniform(*window))
        self.note("PostgreSQL: stop")
        await asyncio.to_thread(self.postgres.stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(self.postgres.start)
        self.note("PostgreSQL: started again")

    async def broker_freeze(self, window: tuple[float, float], seconds: float = 8.0) -> None:
        """The broker stops answering (SIGSTOP) at a random moment, for longer than the group
        session timeout (6 s), then goes on (SIGCONT) with its data: see services.py."""
        if self.broker is None:
            return
        await self.at(self.rng.uniform(*window))
        self.note(f"broker: frozen for {seconds:.0f} s")
        freeze(self.broker)
        try:
            await asyncio.sleep(seconds)
        finally:
            thaw(self.broker)
        self.note("broker: answering again")

    def infrastructure_faults(self) -> list[Coroutine[Any, Any, None]]:
        """The broker freezes while the first outages are open, PostgreSQL restarts a little
        later, as the contact centre looks callers up (from 30 s)."""
        return [self.broker_freeze((16.0, 20.0)), self.postgres_restart((26.0, 32.0))]

    def kills(self) -> list[Coroutine[Any, Any, None]]:
        """Each over by 65 s (plus a restart); one more notifier kill is in the SMS faults."""
        late = CLEARING
        return [
            self.kill_at_random("detector", ((6.0, 14.0), (late, late + 8.0))),
            self.kill_at_random("planner", ((9.0, 22.0), (late + 2.0, late + 12.0))),
            self.kill_at_random("notifier-a", ((late + 2.0, late + 10.0),)),
        ]

    def provider_faults(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self.detected_phase_providers(),
            self.resolved_phase_providers(),
            self.smtp_down_after_refusing(),
        ]

    async def stop(self) -> None:
        """Let the provider faults that still wait for traffic give up; then clear them all."""
        self.stopping.set()
        self.gateway.set_delay(0.0)
        self.gateway.fail_next(0)
        self.smtp.refuse(False)


def lookup_phones(network: Network) -> list[str]:
    """Phones of a few affected customers, and one no customer has."""
    affected = [c for customers in network.affected().values() for c in customers[:2]]
    return [network.customers[c]["phone"] for c in affected] + ["+4915199999999"]


async def lookup(api_url: str, phone: str, at: float, storm: Storm) -> None:
    """The contact centre looks a caller up by phone while the outages are open."""
    await storm.at(at)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as client:
        for _ in range(12):
            response = await client.get("/v1/lookup", params={"phone": phone})
            if response.status_code != 503:
                break
            # PostgreSQL is restarting: the API says so and when to come back.
            storm.lookups_503 += 1
            await asyncio.sleep(float(response.headers["Retry-After"]))
    if response.status_code not in (200, 404):
        raise Failed(f"lookup answered {response.status_code}: {response.text}")


def count_by(rows: list[Any], key: Callable[[Any], Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        name = str(key(row))
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def notifier_log_figures(log_dir: Path) -> dict[str, Any]:
    """What the notifiers logged about retries, failures and reconciled claims."""
    retried: dict[str, int] = {}
    failed: dict[str, int] = {}
    reconciled = 0
    for path in sorted(log_dir.glob("notifier-*.log")):
        for line in json_lines(path.read_text(errors="replace")):
            event = line.get("event")
            if event == "notice will be retried":
                retried[str(line.get("reason"))] = retried.get(str(line.get("reason")), 0) + 1
            elif event == "notice failed":
                failed[str(line.get("reason"))] = failed.get(str(line.get("reason")), 0) + 1
            elif event == "expired claims reconciled":
                reconciled += int(line.get("rows", 0))
    return {
        "retries_logged_by_reason": dict(sorted(retried.items())),
        "failures_logged_by_reason": dict(sorted(failed.items())),
        "expired_claims_reconciled": reconciled,
    }
