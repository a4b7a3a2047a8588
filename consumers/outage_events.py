"""The planner: consume `outage-events`, write notification outbox rows, commit.

Offsets are committed after the rows are in the database; a replayed event plans nothing
twice because outbox rows are unique per customer x outage x stage x channel.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import structlog
from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import Clock, utc_now
from app.db import transaction
from app.detection.spec import Severity
from app.noc.promises import (
    maintenance_due,
    outages_by_state,
    outages_due_a_survey,
    overdue_promises,
    post_due_updates,
)
from app.notifications.planner import (
    PlanPolicy,
    plan_maintenance_notices,
    plan_notices,
    plan_survey,
    stage_of,
)
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.settings import Settings
from consumers.clients import make_consumer
from consumers.metrics import ConsumerMetrics, consumer_metrics

log = structlog.get_logger("forewarn.planner")

GROUP_ID = "forewarn-planner"


class Planner:
    """Turn outage events into outbox rows."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock = utc_now,
        metrics: ConsumerMetrics | None = None,
        keep_every: float = 10.0,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.metrics = metrics or consumer_metrics()
        self._topic = settings.topic("outage-events")
        self.policy = PlanPolicy.from_settings(settings)
        self.keep_every = keep_every

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; a failing batch is retried from its committed offset."""
        consumer = make_consumer(self.settings, "outage-events", GROUP_ID, max_poll_records=100)
        await consumer.start()
        last_kept = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() - last_kept >= self.keep_every:
                    await self._keep_promises_guarded()
                    last_kept = time.monotonic()
                batch = await consumer.getmany(timeout_ms=500)
                if not batch:
                    continue
                try:
                    await self._process([r for records in batch.values() for r in records])
                    await consumer.commit()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the loop's outermost guard: log, count, retry
                    log.exception("planning failed; retrying from the committed offsets")
                    self.metrics.skipped.labels("planner", "error").inc()
                    for partition in batch:
                        committed = await consumer.committed(partition)
                        if committed is None:
                            await consumer.seek_to_beginning(partition)
                        else:
                            consumer.seek(partition, committed)
                    await asyncio.sleep(1.0)
        finally:
            await consumer.stop()

    async def _process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        started = time.perf_counter()
        for record in records:
            self.metrics.consumed.labels(self._topic, str(record.partition)).inc()
            try:
                event = OutageEvent.from_json(record.value or b"")
            except (ValueError, KeyError, TypeError) as exc:
                log.error(
                    "unreadable outage event skipped",
                    error=type(exc).__name__,
                    partition=record.partition,
                    offset=record.offset,
                )
                self.metrics.skipped.labels("planner", "unreadable").inc()
                continue
            async with transaction(self.sessions) as session:
                planned = await plan_notices(
                    session=session, event=event, now=self.clock(), policy=self.policy
                )
            stage = stage_of(event)
            if stage is None:
                self.metrics.skipped.labels("planner", f"state_{event.state.value}").inc()
                continue
            self.metrics.planned.labels(stage).inc(planned)
            log.info("notices planned", outage_id=event.outage_id, stage=stage, rows=planned)
        self.metrics.batch_size.labels("planner").observe(len(records))
        self.metrics.batch_seconds.labels("planner").observe(time.perf_counter() - started)

    async def _keep_promises_guarded(self) -> None:
        try:
            await self.keep_promises()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the loop's outermost guard: log, count, go on
            log.exception("keeping promises failed; trying again shortly")
            self.metrics.skipped.labels("planner", "promise_error").inc()

    async def keep_promises(self) -> None:
        """Post the updates that fell due, plan the surveys that are due, refresh the gauges."""
        now = self.clock()
        interval = self.settings.next_update_interval
        async with transaction(self.sessions) as session:
            for event in await post_due_updates(session=session, now=now, interval=interval):
                planned = await plan_notices(
                    session=session, event=event, now=now, policy=self.policy
                )
                self.metrics.automatic_updates.inc()
                self.metrics.planned.labels("update").inc(planned)
                log.info("automatic update posted", outage_id=event.outage_id, rows=planned)
        if self.settings.survey_after_minutes:
            after = timedelta(minutes=self.settings.survey_after_minutes)
            async with transaction(self.sessions) as session:
                for outage in await outages_due_a_survey(session=session, now=now, after=after):
                    planned = await plan_survey(session=session, outage_id=outage.id, now=now)
                    self.metrics.planned.labels("survey").inc(planned)
        async with transaction(self.sessions) as session:
            due = await maintenance_due(session=session, now=now, settle=self.policy.resolve_hold)
            for window, stage in due:
                planned = await plan_maintenance_notices(
                    session=session, window=window, stage=stage, now=now
                )
                self.metrics.planned.labels(stage).inc(planned)
                log.info("maintenance notices planned", window=window.id, stage=stage, rows=planned)
        async with self.sessions() as session:
            overdue = await overdue_promises(session=session, now=now, grace=timedelta(minutes=1))
            counts = await outages_by_state(session=session)
        self.metrics.update_overdue.set(overdue)
        for state in OutageState:
            if not state.is_closed:
                for severity in Severity:
                    self.metrics.outages.labels(state.value, severity).set(
                        counts.get((state.value, severity), 0)
                    )
