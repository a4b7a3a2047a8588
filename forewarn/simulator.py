"""A simulated access network that plays a scenario into a running Forewarn.

`build_network` (forewarn/simnetwork.py) turns a scenario's sizes into an inventory;
`Timeline` says, second by second of scenario time, what the network sends — heartbeats,
link state, TV signal, OLT alarms and customer contacts, with the scenario's faults applied —
without any I/O; `run_scenario` loads the inventory and rules through the REST API, then
publishes the timeline to Kafka at the scenario's time scale and reports what it injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel

from app.detection.decode import decode_contact, decode_telemetry_message
from app.detection.exceptions import DecodeError
from app.exceptions import ForewarnError
from forewarn.scenario import (
    FibreCut,
    FlappingDevice,
    MaintenanceWork,
    OltAlarm,
    PowerOutage,
    Scenario,
    TvDegraded,
)
from forewarn.simnetwork import SimCustomer, SimDevice, SimulatedNetwork, build_network, weighted

CALL_TOPICS = {
    "fibre_cut": "no internet",
    "power_outage": "no internet, no tv",
    "olt_alarm": "no internet",
    "tv_degraded": "tv picture breaking up",
    "flapping_device": "internet keeps dropping",
    "maintenance": "no internet",
}
SILENCING = (FibreCut, PowerOutage, MaintenanceWork)


class SimulationError(ForewarnError):
    """The target Forewarn refused the scenario's inventory, rules or maintenance."""


# -- the timeline: what the network sends, in scenario time ------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message: `topic` is `telemetry` or `contacts` (before any prefix)."""

    topic: str
    key: str
    value: dict[str, Any]
    at: float  # scenario seconds


@dataclass(frozen=True, slots=True)
class _Scripted:
    at: float
    order: int
    kind: str  # "note", "olt" or "call"
    fault: int | None = None
    text: str = ""
    customer: SimCustomer | None = None
    channel: str = "call"
    by_phone: bool = False


class Timeline:
    """Everything the simulated network sends, in scenario-time order: seeded, no I/O.

    `until(t)` returns the messages due before scenario second `t` (and notes for the
    console); event times are `epoch + scenario seconds`.
    """

    def __init__(self, scenario: Scenario, network: SimulatedNetwork, *, epoch: float) -> None:
        self.scenario = scenario
        self.network = network
        self.epoch = epoch
        self.now = 0.0
        self._rng = random.Random(scenario.seed + 1)  # noqa: S311 - simulation, not security
        telemetry = scenario.telemetry
        self._jitter = telemetry.jitter
        self._periods = {
            "cpe": telemetry.heartbeat_interval / telemetry.rate_multiplier,
            "stb": telemetry.snr_interval / telemetry.rate_multiplier,
            "olt": 0.0,
        }
        self._queue: list[tuple[float, int]] = []
        for index, device in enumerate(network.devices):
            period = self._periods[device.kind]
            if period > 0:
                self._queue.append((self._rng.uniform(0, period), index))
        heapq.heapify(self._queue)
        self._silencers = [f for f in scenario.faults if isinstance(f, SILENCING)]
        self._flaps = [f for f in scenario.faults if isinstance(f, FlappingDevice)]
        self._tv = [f for f in scenario.faults if isinstance(f, TvDegraded)]
        self.affected = [self._affected(f) for f in scenario.faults]
        self.first_calls: dict[int, float] = {}
        self.calls: dict[int, int] = {}
        self._script = sorted(self._build_script(), key=lambda s: (s.at, s.order))
        self._cursor = 0

    # -- who a fault touches ---------------------------------------------------------

    def _affected(self, fault: Any) -> set[str]:
        customers = self.network.customers
        if isinstance(fault, FibreCut | OltAlarm):
            return {c.id for c in customers if c.node == fault.node}
        if isinstance(fault, PowerOutage):
            return {c.id for c in customers if c.hub == fault.hub}
        if isinstance(fault, TvDegraded):
            return {c.id for c in customers if c.node == fault.node and c.has_tv}
        if isinstance(fault, FlappingDevice):
            owner = next(d.customer for d in self.network.devices if d.id == fault.device)
            return {owner} if owner else set()
        if isinstance(fault, MaintenanceWork) and fault.interrupts_service:
            return {c.id for c in customers if fault.scope in (c.node, c.hub, c.region)}
        return set()

    def _silent(self, device: SimDevice, t: float) -> bool:
        for fault in self._silencers:
            if not fault.active(t):
                continue
            if isinstance(fault, FibreCut) and device.node == fault.node:
                return True
            if isinstance(fault, PowerOutage) and device.hub == fault.hub:
                return True
            if (
                isinstance(fault, MaintenanceWork)
                and fault.interrupts_service
                and fault.scope in (device.node, device.hub, device.region)
            ):
                return True
        return False

    def _flapped_off(self, device_id: str | None, t: float) -> bool:
        """Offline for the first half of every period, online for the second."""
        for fault in self._flaps:
            if fault.device == device_id and fault.active(t):
                return int((t - fault.start) // (fault.period / 2)) % 2 == 0
        return False

    # -- the script: fault notes, OLT alarms, customer contacts ----------------------

    def _build_script(self) -> list[_Scripted]:
        script: list[_Scripted] = []
        rng = random.Random(self.scenario.seed + 2)  # noqa: S311 - simulation, not security
        calls = self.scenario.calls
        by_id = {c.id: c for c in self.network.customers}
        for i, fault in enumerate(self.scenario.faults):
            affected = sorted(self.affected[i])
            where = f"{fault.kind} on {fault.scope_id}"
            script.append(
                _Scripted(fault.start, 0, "note", i, f"{where} begins ({len(affected)} customers)")
            )
            script.append(_Scripted(fault.end, 0, "note", i, f"{where} ends"))
            if isinstance(fault, OltAlarm):
                script.append(_Scripted(fault.start, 1, "olt", i, "olt.los"))
                script.append(_Scripted(fault.end, 1, "olt", i, "olt.los_clear"))
            if not fault.customers_call or not affected or calls.share == 0:
                continue
            callers = rng.sample(affected, max(1, round(calls.share * len(affected))))
            first = fault.start + calls.first_after
            times = [first, *sorted(first + rng.uniform(0, calls.over) for _ in callers[1:])]
            for when, caller in zip(times, callers, strict=True):
                if when < fault.end:
                    topic = CALL_TOPICS[fault.kind]
                    script.append(self._call(rng, when, by_id[caller], topic, i))
        if calls.background_per_hour > 0 and self.network.customers:
            when = 0.0
            while True:
                when += rng.expovariate(calls.background_per_hour / 3600)
                if when >= self.scenario.end:
                    break
                anyone = rng.choice(self.network.customers)
                script.append(self._call(rng, when, anyone, "billing question", None))
        return script

    def _call(
        self, rng: random.Random, at: float, customer: SimCustomer, topic: str, fault: int | None
    ) -> _Scripted:
        calls = self.scenario.calls
        channel = str(weighted(rng, dict(calls.channels)))
        by_phone = rng.random() < calls.by_phone_share
        return _Scripted(at, 2, "call", fault, topic, customer, channel, by_phone)

    # -- output ----------------------------------------------------------------------

    def _ts(self, at: float) -> int:
        return int((self.epoch + at) * 1000)

    def _readings(self, device: SimDevice, at: float) -> list[Message]:
        if self._silent(device, at):
            return []
        labels = {"node": device.node}
        ts = self._ts(at)
        if device.kind == "cpe":
            if self._flapped_off(device.id, at):  # the access network sees the modem drop
                reading = {"ts": ts, "device_id": device.id, "metric": "cpe.online", "value": 0}
                return [Message("telemetry", device.node, {**reading, "labels": labels}, at)]
            return [
                Message(
                    "telemetry",
                    device.node,
                    {
                        "ts": ts,
                        "device_id": device.id,
                        "metric": metric,
                        "value": 1,
                        "labels": labels,
                    },
                    at,
                )
                for metric in ("cpe.heartbeat", "cpe.online")
            ]
        if self._flapped_off(device.modem, at):
            return []
        telemetry = self.scenario.telemetry
        mean = next(
            (f.snr_db for f in self._tv if f.node == device.node and f.active(at)), telemetry.snr_db
        )
        value = round(self._rng.gauss(mean, telemetry.snr_spread), 1)
        reading = {"ts": ts, "device_id": device.id, "metric": "stb.snr_db", "value": value}
        return [Message("telemetry", device.node, {**reading, "labels": labels}, at)]

    def _scripted(self, item: _Scripted, notes: list[tuple[float, str]]) -> list[Message]:
        if item.kind == "note":
            notes.append((item.at, item.text))
            return []
        if item.kind == "olt":
            fault = self.scenario.faults[item.fault or 0]
            node = fault.scope_id
            labels = {"node": node, **({"severity": "critical"} if item.text == "olt.los" else {})}
            value = {"ts": self._ts(item.at), "device_id": f"olt-{node}", "metric": item.text}
            return [Message("telemetry", node, {**value, "value": 1, "labels": labels}, item.at)]
        customer = item.customer
        assert customer is not None  # noqa: S101 - every call has its caller
        who = {"phone": customer.phone} if item.by_phone else {"customer_id": customer.id}
        contact = {"ts": self._ts(item.at), **who, "channel": item.channel, "topic": item.text}
        i = item.fault
        if i is not None:  # a call about a fault (everyday contacts are not counted)
            self.calls[i] = self.calls.get(i, 0) + 1
            if i not in self.first_calls:
                self.first_calls[i] = item.at
                fault = self.scenario.faults[i]
                notes.append(
                    (
                        item.at,
                        f"first customer contact about {fault.kind} on {fault.scope_id} "
                        f"({(item.at - fault.start) / 60:.1f} min after it began)",
                    )
                )
        return [Message("contacts", customer.node, contact, item.at)]

    def until(self, t: float) -> tuple[list[Message], list[tuple[float, str]]]:
        """Advance to scenario second `t`: the messages due before it, and console notes
        (scenario second, text)."""
        out: list[Message] = []
        notes: list[tuple[float, str]] = []
        queue, devices, jitter = self._queue, self.network.devices, self._jitter
        while queue and queue[0][0] < t:
            due, index = heapq.heappop(queue)
            device = devices[index]
            out += self._readings(device, due)
            step = self._periods[device.kind] * (1 + self._rng.uniform(-jitter, jitter))
            heapq.heappush(queue, (due + step, index))
        script = self._script
        while self._cursor < len(script) and script[self._cursor].at < t:
            out += self._scripted(script[self._cursor], notes)
            self._cursor += 1
        self.now = max(self.now, t)
        out.sort(key=lambda m: m.at)
        return out, notes


# -- playing a scenario into a running Forewarn ------------------------------------------


class FaultReport(BaseModel):
    """What was injected: where, when, whom it touched, and when the first of them called."""

    kind: str
    scope_level: str
    scope_id: str
    places: list[str]  # the scope and every place under it (a device's node for a device)
    expects_outage: bool
    started_at: datetime
    ended_at: datetime
    affected_customers: int
    calls: int
    first_call_at: datetime | None


class ScenarioResult(BaseModel):
    """What `run_scenario` did; times are event times (scenario time from `started_at`)."""

    scenario: str
    time_scale: float
    started_at: datetime
    scenario_seconds: float
    wall_seconds: float
    completed: bool  # False: stopped before the script's end
    telemetry_messages: int
    contacts: int
    faults: list[FaultReport]


@dataclass(frozen=True, slots=True)
class SimProgress:
    """Reported after every tick: where the scenario is, and what just happened."""

    scenario_seconds: float
    end: float
    telemetry_messages: int
    contacts: int
    notes: list[tuple[float, str]]  # (scenario second, what happened)


def api_client(api_url: str, token: str, *, timeout: float = 60.0) -> httpx.AsyncClient:
    """An HTTP client for the Forewarn API with the bearer token set."""
    return httpx.AsyncClient(
        base_url=api_url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


def _check(response: httpx.Response, what: str) -> httpx.Response:
    if response.is_error:
        raise SimulationError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
    return response


async def load_network(
    api: httpx.AsyncClient, scenario: Scenario, network: SimulatedNetwork
) -> list[tuple[str, str]]:
    """Replace the inventory with the network's and create or update the scenario's rules.

    Return (rule name, "created" | "updated") pairs. Rules are matched by name; an update of
    an unchanged rule keeps its version.
    """
    _check(await api.put("/v1/inventory", json=network.inventory), "PUT /v1/inventory")
    stored = {r["name"]: r for r in _check(await api.get("/v1/rules"), "GET /v1/rules").json()}
    done: list[tuple[str, str]] = []
    for rule in scenario.rule_definitions:
        body = rule.model_dump(mode="json", by_alias=True)
        current = stored.get(rule.name)
        if current is None:
            _check(await api.post("/v1/rules", json=body), f"POST rule {rule.name}")
            done.append((rule.name, "created"))
        else:
            _check(await api.put(f"/v1/rules/{current['id']}", json=body), f"PUT {rule.name}")
            done.append((rule.name, "updated"))
    return done


async def post_maintenance(api: httpx.AsyncClient, scenario: Scenario, epoch: float) -> int:
    """Post every maintenance window of the scenario (at its start, so before the work)."""
    posted = 0
    for fault in scenario.faults:
        if isinstance(fault, MaintenanceWork):
            body = {
                "scope": fault.scope,
                "start": datetime.fromtimestamp(epoch + fault.start, UTC).isoformat(),
                "end": datetime.fromtimestamp(epoch + fault.end, UTC).isoformat(),
                "reason": fault.reason,
                "services": fault.services,
            }
            _check(await api.post("/v1/maintenance", json=body), "POST /v1/maintenance")
            posted += 1
    return posted


async def event_clock(
    bootstrap_servers: str,
    *,
    telemetry_topic: str,
    contacts_topic: str,
    now: float,
    read_seconds: float = 5.0,
) -> float:
    """Where the deployment's event clock stands (epoch seconds): the newest event time on
    the topics, moved on by the wall time since it was written, as a detector's watermark
    moves on; `now` when that is earlier or the topics are empty.

    A run at `time_scale` > 1 leaves event time ahead of the wall clock, and a detector
    drops events older than its watermark minus the allowed lateness: the next run must
    start after this, not at `now`.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetch the cluster's metadata
        partitions = [
            TopicPartition(topic, p)
            for topic in (telemetry_topic, contacts_topic)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return now
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        last = {tp: end - 1 for tp, end in ends.items() if end > 0}
        for tp, offset in last.items():
            consumer.seek(tp, offset)
        clock, deadline = now, time.monotonic() + read_seconds
        while last and time.monotonic() < deadline:
            batch = await consumer.getmany(*last, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < last.get(tp, record.offset + 1):
                        continue
                    last.pop(tp, None)
                    written = record.timestamp / 1000 if record.timestamp > 0 else now
                    clock = max(
                        clock, _event_time(record.value, tp.topic == contacts_topic) + now - written
                    )
        return clock
    finally:
        await consumer.stop()


def _event_time(raw: bytes | None, contact: bool) -> float:
    try:
        if contact:
            return decode_contact(raw).ts
        return max((event.ts for event in decode_telemetry_message(raw)), default=0.0)
    except DecodeError:
        return 0.0


def _report(scenario: Scenario, network: SimulatedNetwork, timeline: Timeline) -> list[FaultReport]:
    reports = []
    for i, fault in enumerate(scenario.faults):
        first = timeline.first_calls.get(i)
        reports.append(
            FaultReport(
                kind=fault.kind,
                scope_level=fault.scope_level,
                scope_id=fault.scope_id,
                places=sorted(network.places(fault.scope_id)),
                expects_outage=fault.expects_outage,
                started_at=datetime.fromtimestamp(timeline.epoch + fault.start, UTC),
                ended_at=datetime.fromtimestamp(timeline.epoch + fault.end, UTC),
                affected_customers=len(timeline.affected[i]),
                calls=timeline.calls.get(i, 0),
                first_call_at=(
                    datetime.fromtimestamp(timeline.epoch + first, UTC)
                    if first is not None
                    else None
                ),
            )
        )
    return reports


async def run_scenario(
    scenario: Scenario,
    *,
    api: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    telemetry_topic: str,
    contacts_topic: str,
    stop: asyncio.Event | None = None,
    linger: bool = False,
    on_progress: Callable[[SimProgress], Any] | None = None,
    network: SimulatedNetwork | None = None,
    not_before: float = 0.0,
    tick: float = 0.25,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> ScenarioResult:
    """Load the scenario into Forewarn, then play it into Kafka until its end (or `stop`).

    Scenario second 0 is the event time when streaming starts (the wall clock, or
    `not_before` when that is later: see `event_clock`); from there scenario time runs
    `time_scale` times faster than the wall clock. With `linger`, healthy telemetry goes on
    after the script's end until `stop` is set (the demo waits for every outage to close).
    The producer is the caller's, started; messages are keyed by node.
    """
    stop = stop or asyncio.Event()
    network = network or build_network(scenario)
    await load_network(api, scenario, network)
    epoch, started = max(clock(), not_before), monotonic()
    await post_maintenance(api, scenario, epoch)
    timeline = Timeline(scenario, network, epoch=epoch)
    telemetry = contacts = 0
    end = scenario.end
    while True:
        t = (monotonic() - started) * scenario.time_scale
        finished = t >= end and not linger
        messages, notes = timeline.until(min(t, end) if finished else t)
        for message in messages:
            topic = telemetry_topic if message.topic == "telemetry" else contacts_topic
            await producer.send(topic, orjson.dumps(message.value), key=message.key.encode())
            if message.topic == "telemetry":
                telemetry += 1
            else:
                contacts += 1
        if messages:
            await producer.flush()
        if on_progress is not None:
            on_progress(
                SimProgress(min(t, end) if finished else t, end, telemetry, contacts, notes)
            )
        if finished or stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)
    return ScenarioResult(
        scenario=scenario.name,
        time_scale=scenario.time_scale,
        started_at=datetime.fromtimestamp(epoch, UTC),
        scenario_seconds=timeline.now,
        wall_seconds=monotonic() - started,
        completed=timeline.now >= end,
        telemetry_messages=telemetry,
        contacts=contacts,
        faults=_report(scenario, network, timeline),
    )
