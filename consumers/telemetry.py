"""The detector: consume telemetry, run the engine, persist transitions, publish, commit.

Delivery contract (at-least-once with idempotent effects):
1. `getmany` a batch; decode each message; a bad one (or one dated past the clock plus the
   allowed skew) goes to `<prefix>telemetry.dlq` with its original bytes and a `reason` header
   (the DLQ write is awaited before the engine sees the batch). If that, or reconciling after
   a rebalance, fails, the consumer is moved back to the batch's first offsets, so the next
   `getmany` returns the batch again instead of skipping it.
2. Feed the good events to the engine; persist its transitions in one DB transaction.
3. Publish one `outage-events` message per applied transition and wait for the broker's ack.
4. Only then commit the batch's offsets.
A crash anywhere before 4 replays the batch; `apply_transitions` recognises transitions it has
already applied, so no outage is opened twice and any publish lost in the crash happens then.
If persisting fails, the loop keeps the transitions and retries them before it consumes more,
so a database outage slows the detector down but loses nothing.

State after a restart or rebalance ("replay from the committed offset, reconcile with the
database"): on start and after every partition assignment the engine's open outages are made to
match the database (another detector may have opened, attached or closed some); a scope taken
over this way waits to see its devices again before it believes a clear. Device states rebuild
from the telemetry that follows the committed offset, since every device reports periodically.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import Clock, utc_now
from app.db import retry_until_done, transaction
from app.detection.decode import decode_contact, decode_telemetry_batch
from app.detection.engine import DetectionEngine
from app.detection.exceptions import DecodeError
from app.detection.telemetry import Telemetry
from app.domain.contacts import Contact
from app.domain.topology import Topology
from app.errors import unavailable
from app.inventory.topology import load_topology
from app.maintenance.service import maintenance_windows
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState, Transition
from app.outages.service import (
    active_outages,
    apply_transitions,
    mark_published,
    record_first_contacts,
    unpublished_events,
)
from app.rules.service import enabled_rule_specs
from app.settings import Settings
from consumers.clients import make_consumer, make_producer
from consumers.collector import restore, tune_for_batches
from consumers.metrics import ConsumerMetrics, consumer_metrics

log = structlog.get_logger("forewarn.detector")

GROUP_ID = "forewarn-detector"
# How long a detector that cannot reach its database at start-up waits before it tries again.
START_RETRY_SECONDS = 1.0
OnEvent = Callable[[OutageEvent], Awaitable[None] | None]
# Called after a commit that applied transitions and before their publish (tests die here).
AfterPersist = Callable[[], Awaitable[None] | None]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Offsets are committed after every batch, so a revoke has nothing left to commit;
    an assignment asks the loop to reconcile the engine with the database first."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.detector.assigned -= set(revoked)
        self.detector.metrics.assigned_partitions.labels("detector").set(
            len(self.detector.assigned)
        )

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.detector.assigned |= set(assigned)
        self.detector.metrics.assigned_partitions.labels("detector").set(
            len(self.detector.assigned)
        )
        self.detector._reconcile_needed = True
        log.info(
            "partitions assigned", partitions=sorted(f"{p.topic}/{p.partition}" for p in assigned)
        )


def dead_letter_error(exc: Exception) -> DecodeError:
    """The reason to dead-letter a message with: the decoder's, or `internal_error`."""
    if isinstance(exc, DecodeError):
        return exc
    log.error("decoder failed unexpectedly; message dead-lettered", exc_info=exc)
    return DecodeError("internal_error", type(exc).__name__)


def _rewind(
    consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
) -> None:
    """Move the consumer back to the first record of each of the batch's partitions it still
    holds, so the next `getmany` returns them again (a revoked one is the new owner's)."""
    assigned = consumer.assignment()
    for partition, records in batch.items():
        if records and partition in assigned:
            consumer.seek(partition, records[0].offset)


class Detector:
    """One detector process's consume loop; several share the partitions of one group."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock = utc_now,
        metrics: ConsumerMetrics | None = None,
        on_event: OnEvent | None = None,
        after_persist: AfterPersist | None = None,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.metrics = metrics or consumer_metrics()
        self.on_event = on_event
        self.after_persist = after_persist
        self.refresh_seconds = refresh_seconds
        self.engine = DetectionEngine([], Topology())
        self._unpersisted: list[Transition] = []
        self._contacts_topic = settings.topic("contacts")
        self._contacts: list[Contact] = []
        self._reconcile_needed = False
        self.assigned: set[TopicPartition] = set()
        self._dlq_topic = settings.topic("telemetry.dlq")
        self._events_topic = settings.topic("outage-events")

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; no exception escapes except at start-up."""
        consumer = make_consumer(
            self.settings, ["telemetry", "contacts"], GROUP_ID, listener=_Rebalance(self)
        )
        producer = make_producer(self.settings)
        await producer.start()
        await consumer.start()
        thresholds: tuple[int, int, int] | None = None
        try:
            await self._start(producer, stop)
            thresholds = tune_for_batches()  # see consumers/collector.py
            last_refresh = time.monotonic()
            last_batch = time.monotonic()
            while not stop.is_set():
                try:
                    if self._unpersisted:
                        await self._flush(producer)
                        await consumer.commit()
                    batch = await consumer.getmany(timeout_ms=500)
                    started = time.perf_counter()
                    try:
                        if self._reconcile_needed:
                            await self._reconcile()
                            await self._publish_pending(producer)
                        decoded = await self._decode(batch, producer)
                    except Exception:
                        # The engine has not seen this batch: read it again, never skip it.
                        _rewind(consumer, batch)
                        raise
                    now_mono = time.monotonic()
                    if batch:
                        await self._process(batch, decoded, consumer, producer, started)
                        last_batch = now_mono
                    elif self.engine.watermark:
                        # A quiet network still moves time on: confirm timers must fire.
                        idle = now_mono - last_batch
                        self._unpersisted += self.engine.advance(self.engine.watermark + idle)
                        last_batch = now_mono
                        if self._unpersisted:
                            await self._flush(producer)
                    if now_mono - last_refresh >= self.refresh_seconds:
                        await self._refresh()
                        await self._publish_pending(producer)
                        last_refresh = now_mono
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the loop's outermost guard: log, count, go on
                    log.exception("detector batch failed; retrying", pending=len(self._unpersisted))
                    self.metrics.skipped.labels("detector", "error").inc()
                    await asyncio.sleep(1.0)
        finally:
            if thresholds is not None:
                restore(thresholds)
            await consumer.stop()
            await producer.stop()

    async def _start(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        """Load the engine and publish what an earlier detector left; while the database
        cannot be reached (a detector restarted while PostgreSQL restarts), wait and retry.
        Any other failure stops start-up."""

        async def start() -> None:
            await self._load()
            await self._publish_pending(producer)

        await retry_until_done(
            start,
            stop=stop,
            every=START_RETRY_SECONDS,
            retry=lambda exc: unavailable(exc) is not None,
            waiting="database unavailable at start-up; retrying",
            logger=log,
        )

    async def _load(self) -> None:
        async with transaction(self.sessions) as session:
            rules = await enabled_rule_specs(session=session)
            topology = await load_topology(session=session)
            active = await active_outages(session=session)
            windows = await maintenance_windows(session=session, now=self.clock())
        self.engine = DetectionEngine(
            rules,
            topology,
            active,
            allowed_lateness=self.settings.allowed_lateness_seconds,
            correlate_min_children=self.settings.correlate_min_children,
        )
        self.engine.replace_maintenance(windows)
        log.info("detector ready", rules=len(rules), devices=len(topology.device_node))

    async def _publish_pending(self, producer: AIOKafkaProducer) -> list[OutageEvent]:
        """Publish every committed but unpublished outage event, then mark it published.

        The events wait in the outage timeline (a transactional outbox), so an event whose
        publisher died after the commit is published by whichever detector runs this next.
        A crash after the send and before the mark publishes it again: consumers of
        `outage-events` are idempotent.
        """
        async with self.sessions() as session:
            pending = await unpublished_events(session=session)
        if not pending:
            return []
        sends = [
            await producer.send(self._events_topic, value=e.to_json(), key=e.outage_id.encode())
            for _, e in pending
        ]
        await asyncio.gather(*sends)
        async with transaction(self.sessions) as session:
            await mark_published(
                session=session, entry_ids=[entry_id for entry_id, _ in pending], clock=self.clock
            )
        for _, event in pending:
            self.metrics.transitions.labels(event.state.value).inc()
            log.info(
                "outage transition",
                outage_id=event.outage_id,
                state=event.state.value,
                rule=event.rule_name,
                scope=f"{event.scope_level}:{event.scope_id}",
            )
            if self.on_event is not None:
                result = self.on_event(event)
                if result is not None:
                    await result
        return [event for _, event in pending]

    async def _reconcile(self) -> None:
        """After a rebalance, follow the outages other detectors persisted meanwhile."""
        async with transaction(self.sessions) as session:
            active = await active_outages(session=session)
        self.engine.reconcile(active)
        self._reconcile_needed = False
        log.info("partitions reassigned; engine reconciled", active_outages=len(active))

    async def _refresh(self) -> None:
        """Pick up rule and inventory changes, and outages the NOC closed, without a restart."""
        async with transaction(self.sessions) as session:
            self.engine.replace_rules(await enabled_rule_specs(session=session))
            self.engine.replace_topology(await load_topology(session=session))
            self.engine.replace_maintenance(
                await maintenance_windows(session=session, now=self.clock())
            )
            if not self._unpersisted:
                self.engine.forget_closed(await active_outages(session=session))
        self.metrics.tracked_scopes.set(self.engine.tracked_scopes())

    async def _decode(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        producer: AIOKafkaProducer,
    ) -> tuple[list[Telemetry], list[Contact]]:
        """Decode a batch; dead-letter what does not decode and wait for the broker's acks, so
        a batch whose dead letters could not be written is read again, not lost.

        A message dated after this detector's clock plus `max_clock_skew_seconds` is a broken
        clock, not news: it is dead-lettered (`future_timestamp`) before the engine sees it,
        so it moves no watermark (the bound is taken once per batch)."""
        events: list[Telemetry] = []
        contacts: list[Contact] = []
        dead: list[Awaitable[object]] = []
        latest_ts = self.clock().timestamp() + self.settings.max_clock_skew_seconds
        for records in batch.values():
            if not records:
                continue
            if records[0].topic != self._contacts_topic:
                failures = decode_telemetry_batch(
                    [r.value for r in records], events, latest_ts=latest_ts
                )
                for index, exc in failures:
                    error = dead_letter_error(exc)
                    dead.append(await self._dead_letter(producer, records[index], error))
                continue
            for record in records:
                try:
                    contacts.append(decode_contact(record.value, latest_ts=latest_ts))
                except Exception as exc:  # noqa: BLE001 - one message must never cost its batch
                    error = dead_letter_error(exc)
                    dead.append(await self._dead_letter(producer, record, error))
        if dead:
            await asyncio.gather(*dead)
        return events, contacts

    async def _process(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        decoded: tuple[list[Telemetry], list[Contact]],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        started: float,
    ) -> None:
        """Feed a decoded batch to the engine, persist and publish what it says, commit.

        From here on the batch is the engine's: if persisting fails, its transitions wait in
        `_unpersisted` and the loop retries them before it reads on (see the module doc)."""
        events, contacts = decoded
        count = 0
        for records in batch.values():
            if records:
                self.metrics.consumed.labels(records[0].topic, str(records[0].partition)).inc(
                    len(records)
                )
                count += len(records)
        late_before = self.engine.late
        self._unpersisted += self.engine.feed(events)
        if contacts:
            self._unpersisted += self.engine.feed_contacts(contacts)
            self._contacts += contacts
        if self.engine.late > late_before:
            self.metrics.late_events.inc(self.engine.late - late_before)
        await self._flush(producer)
        await consumer.commit()
        self._observe_lag(consumer, batch)
        self.metrics.batch_size.labels("detector").observe(count)
        self.metrics.batch_seconds.labels("detector").observe(time.perf_counter() - started)

    def _observe_lag(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        for partition, records in batch.items():
            highwater = consumer.highwater(partition)
            if highwater is not None and records:
                lag = max(highwater - records[-1].offset - 1, 0)
                self.metrics.consumer_lag.labels(
                    "detector", partition.topic, str(partition.partition)
                ).set(lag)

    async def _dead_letter(
        self, producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes], exc: DecodeError
    ) -> Awaitable[object]:
        self.metrics.decode_failures.labels(record.topic, exc.reason).inc()
        self.metrics.dlq_writes.labels(self._dlq_topic).inc()
        log.warning(
            "telemetry to DLQ",
            reason=exc.reason,
            detail=exc.detail,
            partition=record.partition,
            offset=record.offset,
        )
        headers = [
            ("reason", exc.reason.encode()),
            ("detail", exc.detail.encode()),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        sent: Awaitable[object] = await producer.send(
            self._dlq_topic, value=record.value or b"", key=record.key, headers=headers
        )
        return sent

    async def _flush(self, producer: AIOKafkaProducer) -> None:
        """Persist pending transitions, publish their events, and forget them."""
        if not self._unpersisted and not self._contacts:
            return
        async with transaction(self.sessions) as session:
            if self._contacts:
                lead_times = await record_first_contacts(
                    session=session, contacts=self._contacts, topology=self.engine.topology
                )
                for seconds in lead_times:
                    self.metrics.lead_time.observe(seconds)
            events = await apply_transitions(
                session=session,
                transitions=self._unpersisted,
                next_update_interval=self.settings.next_update_interval,
                clock=self.clock,
            )
            applied = any(event is not None for event in events)
        if applied and self.after_persist is not None:
            result = self.after_persist()
            if result is not None:
                await result
        await self._publish_pending(producer)
        now = self.clock()
        for transition in self._unpersisted:
            if transition.to_state is OutageState.OPEN and not transition.is_parent:
                latency = (now - transition.started_at).total_seconds()
                self.metrics.detection_latency.observe(max(latency, 0.0))
        self._unpersisted = []
        self._contacts = []
