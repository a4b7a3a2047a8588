"""Peer: the same `ratio_down` rule as a Quix Streams application, over the same topic, same run.

Needs `pip install quixstreams` (not a Forewarn dependency; without it this benchmark skips).
Note quixstreams 3.28 pins pydantic<2.14 and pydantic-settings<2.16, below what Forewarn's
own install resolves to; it runs with the newer ones all the same (pip only warns).

1. Produce N telemetry messages to a fresh topic on the embedded broker (as `bench.detector`).
2. Baseline: an aiokafka consumer built as the detector's (same settings, same topics) reading and
   decoding that topic (as `bench.detector`).
3. Forewarn: the real `Detector` with one `ratio_down` rule per metric (steady-state rate).
4. Peer: a Quix Streams application in its own process (`python -m bench.peer --worker ...`):
   state scoped by node (the message key), one RocksDB state entry per metric holding its
   devices' latest readings, the down count and whether an outage is open (one get and one
   set per message: measured faster than an entry per device, 45k against 35k msg/s), `open`
   emitted when more than 30% of at least 5 devices seen are down and `clear` below 10%, to
   an output topic. Timed from its first processed message to its N-th, so process start-up
   and the consumer-group join are not counted (as for Forewarn).
   It runs twice: with Quix's default changelog topic (fault-tolerant state, every state
   write also produced to Kafka) and without it (local RocksDB only; Forewarn keeps no such
   log either, it rebuilds device state by replaying telemetry after the committed offset).
5. The peer's own ceiling: its Kafka client (confluent-kafka) consuming and decoding the topic
   and nothing else, as step 2 does for Forewarn's, so each framework's rate can be read
   against its own client's.
6. Both must find the same outages: Forewarn's persisted node outages against the peer's
   `open` events read back from its output topic, per (node, metric).

What the embedded broker (Tansu 0.6.0) does with the peer, as tried:
- Quix reads the input topic's `retention.ms` through DescribeConfigs to derive its changelog
  topic's config, and Tansu returns only configs set explicitly, so a topic created without
  one fails with `KeyError: 'retention.ms'` (with `use_changelog_topics=False` too): the
  input topic is created here with an explicit `retention.ms`. That is the one setting needed.
- librdkafka's idempotent producer (Quix's default) starts and produces without error; only
  aiokafka's InitProducerId fails. It is turned off anyway, for parity with Forewarn's producer.
- `processing_guarantee="exactly-once"` also runs, but it is not exactly-once: Tansu accepts
  the transaction calls and then shows records of aborted transactions to `read_committed`
  consumers. So the peer runs at-least-once, as Forewarn does.
- Changelog topics are created by Quix itself and work.
- ListOffsets (latest) answers the last batch's base offset + 1, not the log end (1,000 records
  in one batch: end offset 1), so the output topic is read back until it is quiet, not to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
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
THRESHOLD, CLEAR_THRESHOLD, MIN_DEVICES = 0.3, 0.1, 5  # the rules `seed_database` creates
RESULT_MARK = "PEER-RESULT "
SOURCE_RETENTION_MS = 7 * 24 * 3600 * 1000  # Kafka's default, stated explicitly for the peer
# The peer runs in its own interpreter: quixstreams pins pydantic below what Forewarn needs, so
# `make bench` gives it a virtualenv of its own (.venv-peer) and names it here.
PEER_PYTHON = os.environ.get("FOREWARN_PEER_PYTHON", sys.executable)
SKIP_MESSAGE = (
    "peer benchmark skipped: quixstreams is not installed for "
    f"{PEER_PYTHON} (make bench installs it in .venv-peer)"
)

# Every non-default setting the peer is given, and why; copied into the results.
PEER_NOTES = [
    "input topic created with an explicit retention.ms (needed: Quix derives its changelog "
    "config from it and Tansu's DescribeConfigs returns only explicit configs)",
    'processing_guarantee="at-least-once" (exactly-once runs on Tansu but aborts are not honoured)',
    'producer_extra_config={"enable.idempotence": False} (not needed on Tansu 0.6.0; parity)',
    'auto_offset_reset="earliest", a fresh consumer group, a temporary state_dir',
    "consumer session.timeout.ms=6000, as Forewarn's bench: only shortens the untimed join",
    "commit_interval left at Quix's 5 s default (Forewarn commits after every batch)",
]

ScopeKey = tuple[str, str]  # (node, metric)


# -- the comparison (runs the broker, Forewarn and the peer's process) ----------------------


async def peer_rate(
    bootstrap: str,
    topic: str,
    output: str,
    messages: int,
    changelog: bool,
    client_raw: bool = False,
) -> dict[str, Any]:
    """Run the peer in its own process until it has processed `messages`; return its figures.

    `client_raw`: run only its Kafka client's raw consume + decode instead of the application.
    """
    with tempfile.TemporaryDirectory(prefix="bench-peer-state-") as state_dir:
        command = [
            PEER_PYTHON,
            str(ROOT / "bench" / "peer_app.py"),
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
            "--changelog" if changelog else "--no-changelog",
            *(["--client-raw"] if client_raw else []),
        ]
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=1800)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
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
        ends = await consumer.end_offsets(partitions)  # a lower bound on Tansu: see above
        opens: Counter[ScopeKey] = Counter()
        clears = 0
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch and not [p for p in partitions if await consumer.position(p) < ends[p]]:
                break
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
    """`node/metric` per scope with an outage, `x<n>` when it opened more than once."""
    return sorted(
        f"{node}/{metric}" + (f" x{n}" if n > 1 else "") for (node, metric), n in opens.items()
    )


async def create_source_topic(bootstrap: str, topic: str) -> None:
    """The telemetry topic, with its retention set explicitly (see `PEER_NOTES`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"retention.ms": str(SOURCE_RETENTION_MS)})]
        )
    finally:
        await admin.close()


PEERS = {"peer": True, "peer_no_changelog": False}  # figure name -> use_changelog_topics


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
        outputs = {name: settings.topic(f"{name}.outages") for name in PEERS}
        await create_source_topic(bootstrap, topic)
        await ensure_topics(
            bootstrap,
            [settings.topic(t) for t in ("contacts", "outage-events", "telemetry.dlq")]
            + list(outputs.values()),
            1,
        )
        console.print(f"{messages:,} messages from {devices:,} devices, {len(METRICS)} rules")
        await produce(bootstrap, topic, messages, devices)
        raw = await raw_rate(settings, ["telemetry", "contacts"], messages)
        console.print(f"raw aiokafka consume + decode: {raw:,.0f} msg/s")
        await seed_database(settings.database_url, devices)
        ours, outages = await detector_rate(settings, topic, messages)
        console.print(f"forewarn detector: {ours:,.0f} msg/s ({outages} outage(s) persisted)")
        ours_opened = await forewarn_opens(settings.database_url)
        client = await peer_rate(bootstrap, topic, "", messages, False, client_raw=True)
        client_raw = float(client["msgs_per_s"])
        console.print(
            f"raw confluent-kafka (the peer's client) consume + decode: {client_raw:,.0f}"
        )
        rates: dict[str, float] = {}
        opened: dict[str, Counter[ScopeKey]] = {}
        clears: dict[str, int] = {}
        for name, changelog in PEERS.items():
            theirs = await peer_rate(bootstrap, topic, outputs[name], messages, changelog)
            rates[name] = float(theirs["msgs_per_s"])
            console.print(
                f"quix streams {name}: {rates[name]:,.0f} msg/s "
                f"(then {theirs['shutdown_s']:.1f}s of final checkpoint and close, not counted)"
            )
            opened[name], clears[name] = await peer_opens(bootstrap, outputs[name])
    notes = list(PEER_NOTES)
    same = all(found == ours_opened for found in opened.values())
    for name, found in opened.items():
        if found != ours_opened:
            notes.append(
                f"OUTAGES DIFFER: forewarn {_scopes(ours_opened)}, {name} {_scopes(found)}"
            )
    peer, fastest = rates["peer"], rates["peer_no_changelog"]
    figures: dict[str, Any] = {
        "messages": messages,
        "devices": devices,
        "raw": round(raw),
        "forewarn": round(ours),
        "peer": round(peer),
        "peer_no_changelog": round(fastest),
        "forewarn_over_peer": round(ours / peer, 2),
        "forewarn_over_peer_no_changelog": round(ours / fastest, 2),
        "forewarn_over_raw": round(ours / raw, 3),
        "peer_over_raw": round(peer / raw, 3),
        "peer_no_changelog_over_raw": round(fastest / raw, 3),
        "peer_client_raw": round(client_raw),
        "peer_over_its_client_raw": round(peer / client_raw, 3),
        "forewarn_outages": _scopes(ours_opened),
        "peer_outages": _scopes(opened["peer"]),
        "peer_no_changelog_outages": _scopes(opened["peer_no_changelog"]),
        "peer_clears": clears["peer"],
        "same_outages": same,
        "quixstreams": _quix_version(),
        "notes": notes,
    }
    table = Table(title="Forewarn against a Quix Streams peer (same broker, same topic, same run)")
    table.add_column("msg/s")
    columns = ("raw", "forewarn", "peer", "peer_no_changelog")
    for key in columns:
        table.add_column(key, justify="right")
    table.add_row("rate", *(f"{figures[k]:,}" for k in columns))
    table.add_row(
        "forewarn over",
        f"{ours / raw:.3f}",
        "1",
        f"{figures['forewarn_over_peer']}x",
        f"{figures['forewarn_over_peer_no_changelog']}x",
    )
    console.print(table)
    console.print(
        f"the peer's own client (confluent-kafka) consumes + decodes {client_raw:,.0f} msg/s here: "
        f"Quix runs at {peer / client_raw:.2f} of it, Forewarn at {ours / raw:.2f} of aiokafka's"
    )
    style = "green" if same else "bold red"
    console.print(
        f"[{style}]outages opened: forewarn {figures['forewarn_outages']}, "
        f"peer {figures['peer_outages']}, "
        f"peer_no_changelog {figures['peer_no_changelog_outages']}[/{style}]"
    )
    for note in notes:
        console.print(f"  - {note}")
    return figures


def _quix_version() -> str | None:
    """The peer interpreter's quixstreams version, or None when it has none."""
    probe = subprocess.run(  # noqa: S603 - a fixed one-liner in the peer's interpreter
        [PEER_PYTHON, "-c", "import importlib.metadata as m; print(m.version('quixstreams'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def run_peer(messages: int, devices: int) -> dict[str, Any] | None:
    """The comparison's figures, or None (with a message) when quixstreams is not installed."""
    if _quix_version() is None:
        console.print(f"[yellow]{SKIP_MESSAGE}[/yellow]")
        return None
    return asyncio.run(run(messages, devices))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args(argv)
    figures = run_peer(args.messages, args.devices)
    if figures is not None:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
