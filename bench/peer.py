"""Peer: the same `ratio_down` rule as a Quix Streams application, over the same topic, same run.

Needs `pip install quixstreams` (not a Forewarn dependency; without it this benchmark skips).

1. Produce N telemetry messages to a fresh topic on the embedded broker (as `bench.detector`).
2. Baseline: the raw aiokafka consume + decode rate of that topic.
3. Forewarn: the real `Detector` with one `ratio_down` rule per metric (steady-state rate).
4. Peer: a Quix Streams application in its own process (`python -m bench.peer --worker ...`),
   grouped by node (the message key), keeping each device's latest reading per metric in its
   RocksDB state store, and emitting `open` when more than 30% of at least 5 devices seen are
   down and `clear` below 10%, to an output topic. Timed from its first processed message to
   its N-th, so process start-up and the consumer-group join are not counted (as for Forewarn).
5. Both must find the same outages: Forewarn's persisted node outages against the peer's
   `open` events read back from its output topic, per (node, metric).

Settings the peer needs on the embedded broker (Tansu: no idempotent producer, no
transactions): `processing_guarantee="at-least-once"` (exactly-once needs transactions) and
`producer_extra_config={"enable.idempotence": False}` (Quix turns idempotence on by default
for its internal producer). See `PEER_NOTES` for the full list as measured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from app.db import create_engine, session_factory
from app.outages.models import Outage
from app.settings import Settings
from bench.detector import METRICS, detector_rate, produce, raw_rate, seed_database
from consumers.broker import EmbeddedBroker, ensure_topics

console = Console()
ROOT = Path(__file__).resolve().parents[1]
THRESHOLD, CLEAR_THRESHOLD, MIN_DEVICES = 0.3, 0.1, 5
RESULT_MARK = "PEER-RESULT "
SKIP_MESSAGE = "peer benchmark skipped: quixstreams is not installed (pip install quixstreams)"

# Every non-default setting the peer is given, and why; copied into the results.
PEER_NOTES = [
    'processing_guarantee="at-least-once": exactly-once needs Kafka transactions',
    'producer_extra_config={"enable.idempotence": False}: Quix enables it by default',
    'auto_offset_reset="earliest", a fresh consumer group, a temporary state_dir',
    "consumer session.timeout.ms=6000 (as Forewarn's bench): only shortens the untimed join",
]

ScopeKey = tuple[str, str]  # (node, metric)


# -- the peer application (runs in its own process) -----------------------------------------


def _worker(
    bootstrap: str, topic: str, output: str, messages: int, state_dir: str, group: str
) -> dict[str, Any]:
    from quixstreams import Application, State

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        state_dir=state_dir,
        producer_extra_config={"enable.idempotence": False},
        consumer_extra_config={"session.timeout.ms": 6000},
        loglevel="WARNING",
    )
    source = app.topic(topic, key_deserializer="str", value_deserializer="json")
    sink = app.topic(output, key_serializer="str", value_serializer="json")

    processed = 0
    first = last = 0.0

    def rule(event: dict[str, Any], state: State) -> dict[str, Any] | None:
        """One node's `ratio_down` for the event's metric; the state is scoped by the key."""
        nonlocal processed, first, last
        processed += 1
        if processed == 1:
            first = time.perf_counter()
        if processed >= messages:
            last = time.perf_counter()
            app.stop()
        metric, ts, is_down = event["metric"], event["ts"], event["value"] == 0
        device_key = f"{metric}|{event['device_id']}"
        reading = [ts, is_down]
        previous = state.get(device_key)
        # Newest reading wins; at equal times, down wins (as Forewarn's RatioSignal).
        if previous is not None and previous >= reading:
            return None
        seen, down, is_open = state.get(metric) or (0, 0, False)
        if previous is None:
            seen += 1
        else:
            down -= previous[1]
        down += is_down
        state.set(device_key, reading)
        ratio = down / seen
        emitted: dict[str, Any] | None = None
        if not is_open and seen >= MIN_DEVICES and ratio > THRESHOLD:
            is_open = True
            emitted = {"state": "open", "metric": metric, "ts": ts, "down": down, "seen": seen}
        elif is_open and ratio < CLEAR_THRESHOLD:
            is_open = False
            emitted = {"state": "clear", "metric": metric, "ts": ts, "down": down, "seen": seen}
        state.set(metric, (seen, down, is_open))
        return emitted

    sdf = app.dataframe(source)
    sdf = sdf.apply(rule, stateful=True).filter(lambda value: value is not None)
    sdf.to_topic(sink)
    app.run()
    stopped = time.perf_counter()
    return {
        "processed": processed,
        "seconds": last - first,
        "msgs_per_s": (processed - 1) / (last - first) if last > first else 0.0,
        "shutdown_s": stopped - last,  # final checkpoint (flush, state, commit) and close
    }


# -- the comparison (runs the broker, Forewarn and the peer's process) ----------------------


async def peer_rate(bootstrap: str, topic: str, output: str, messages: int) -> dict[str, Any]:
    """Run the peer in its own process until it has processed `messages`; return its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-peer-state-") as state_dir:
        command = [
            sys.executable,
            "-m",
            "bench.peer",
            "--worker",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--output",
            output,
            "--messages",
            str(messages),
            "--state-dir",
            state_dir,
            "--group",
            f"bench-peer-{uuid.uuid4().hex[:8]}",
        ]
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=1800)
    lines = [line for line in stdout.decode().splitlines() if line.startswith(RESULT_MARK)]
    if process.returncode != 0 or not lines:
        tail = "\n".join(stderr.decode(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"the peer exited with code {process.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARK) :])
    return result


async def peer_opens(bootstrap: str, output: str) -> tuple[Counter[ScopeKey], int]:
    """Read the peer's output topic back: `open` events per (node, metric), and clears."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        numbers = consumer.partitions_for_topic(output) or {0}
        partitions = [TopicPartition(output, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        opens: Counter[ScopeKey] = Counter()
        clears = 0
        while any(await consumer.position(p) < ends[p] for p in partitions):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    event = orjson.loads(record.value or b"{}")
                    node = (record.key or b"").decode()
                    if event["state"] == "open":
                        opens[(node, event["metric"])] += 1
                    else:
                        clears += 1
        return opens, clears
    finally:
        await consumer.stop()


async def forewarn_opens(database_url: str) -> Counter[ScopeKey]:
    """Forewarn's persisted outages per (node, metric); parent (hub) outages are left out."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = (
                await session.execute(
                    select(Outage.scope_id, Outage.rule_name).where(
                        Outage.scope_level == "node", Outage.is_parent.is_(False)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return Counter((scope, name.removeprefix("down-")) for scope, name in rows)


def _scopes(opens: Counter[ScopeKey]) -> list[str]:
    return [f"{node}/{metric}" + (f" x{n}" if n > 1 else "") for (node, metric), n in opens.items()]


async def run(messages: int, devices: int) -> dict[str, Any]:
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap = broker.bootstrap_servers
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            topic_prefix="bench.",
            kafka_session_timeout_ms=6000,
        )
        topic = settings.topic("telemetry")
        output = settings.topic("peer-outages")
        await ensure_topics(
            bootstrap,
            [settings.topic(t) for t in ("telemetry", "outage-events", "telemetry.dlq")] + [output],
            1,
        )
        console.print(f"{messages:,} messages from {devices:,} devices, {len(METRICS)} rules")
        await produce(bootstrap, topic, messages, devices)
        raw = await raw_rate(bootstrap, topic, messages)
        console.print(f"raw aiokafka consume + decode: {raw:,.0f} msg/s")
        await seed_database(settings.database_url, devices)
        ours, outages = await detector_rate(settings, topic, messages)
        console.print(f"forewarn detector: {ours:,.0f} msg/s ({outages} outage(s) persisted)")
        theirs = await peer_rate(bootstrap, topic, output, messages)
        peer = float(theirs["msgs_per_s"])
        console.print(
            f"quix streams peer: {peer:,.0f} msg/s "
            f"(+{theirs['shutdown_s']:.1f}s final checkpoint and close, not counted)"
        )
        ours_opened = await forewarn_opens(settings.database_url)
        peer_opened, peer_clears = await peer_opens(bootstrap, output)
    same = ours_opened == peer_opened
    notes = list(PEER_NOTES)
    if not same:
        notes.append(
            f"OUTAGES DIFFER: forewarn {sorted(_scopes(ours_opened))}, "
            f"peer {sorted(_scopes(peer_opened))}"
        )
    figures: dict[str, Any] = {
        "messages": messages,
        "devices": devices,
        "raw": round(raw),
        "forewarn": round(ours),
        "peer": round(peer),
        "forewarn_over_peer": round(ours / peer, 2),
        "forewarn_over_raw": round(ours / raw, 3),
        "peer_over_raw": round(peer / raw, 3),
        "forewarn_outages": sorted(_scopes(ours_opened)),
        "peer_outages": sorted(_scopes(peer_opened)),
        "peer_clears": peer_clears,
        "same_outages": same,
        "quixstreams": _quix_version(),
        "notes": notes,
    }
    table = Table(title="Forewarn against a Quix Streams peer (same broker, same topic, same run)")
    shown = ("raw", "forewarn", "peer", "forewarn_over_peer", "forewarn_over_raw", "peer_over_raw")
    for key in shown:
        table.add_column(key, justify="right")
    table.add_row(*(f"{figures[k]:,}" for k in shown))
    console.print(table)
    style = "green" if same else "bold red"
    console.print(
        f"[{style}]outages: forewarn {figures['forewarn_outages']}, "
        f"peer {figures['peer_outages']}[/{style}]"
    )
    for note in notes:
        console.print(f"  - {note}")
    return figures


def _quix_version() -> str:
    from importlib.metadata import version

    return version("quixstreams")


def run_peer(messages: int, devices: int) -> dict[str, Any] | None:
    """The comparison's figures, or None (with a message) when quixstreams is not installed."""
    if importlib.util.find_spec("quixstreams") is None:
        console.print(f"[yellow]{SKIP_MESSAGE}[/yellow]")
        return None
    return asyncio.run(run(messages, devices))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--worker", action="store_true", help="internal: run the peer app only")
    parser.add_argument("--bootstrap")
    parser.add_argument("--topic")
    parser.add_argument("--output")
    parser.add_argument("--state-dir")
    parser.add_argument("--group")
    args = parser.parse_args(argv)
    if args.worker:
        result = _worker(
            args.bootstrap, args.topic, args.output, args.messages, args.state_dir, args.group
        )
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    figures = run_peer(args.messages, args.devices)
    if figures is not None:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
