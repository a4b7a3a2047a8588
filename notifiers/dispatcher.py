"""Send what the outbox holds: claim rows, render, hand to a channel, record the outcome.

The guarantee, exactly:
- A row is claimed by moving it from `pending` to `sending` in one statement (on PostgreSQL
  the candidate rows are locked with FOR UPDATE SKIP LOCKED, so several notifiers share the
  outbox without ever claiming the same row; SQLite serialises writers).
- After the provider answers, the outcome is recorded: `sent` with the provider's id, `pending`
  again with a backoff for a temporary failure, or `failed` with the reason.
- A notifier that dies between claiming and recording leaves the row in `sending`. Once its
  lease has expired the row is reconciled: on a channel whose provider deduplicates on the
  notice's idempotency key (the SMS gateway) it is sent again, and the provider answers with
  the first message's id instead of sending a second; on a channel without idempotency
  (SMTP) it becomes `unconfirmed`, counted and shown on the outage, and is never sent again.
  So no notice is ever delivered twice; a crash in that window can cost one e-mail.
- A row for a channel this notifier has no provider for (no `FOREWARN_SMS_GATEWAY_URL`, say)
  is not failed: it is `held`, with `last_error` `channel_not_configured`, and a notifier that
  has the channel releases it (back to `pending`, due now) when it starts and every reconcile
  round after, so configuring the gateway and restarting sends what waited, once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import structlog
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import Clock, utc_now
from app.db import transaction
from app.inventory.consent import opt_outs_of
from app.inventory.models import Customer
from app.inventory.places import places_of
from app.links import unsubscribe_url
from app.maintenance.models import Maintenance
from app.notifications.models import OutboxRow
from app.notifications.planner import insert_outbox_rows
from app.outages.models import Outage, TimelineEntry
from app.outages.queries import maintenance_url, status_url
from app.outages.update_texts import update_text
from app.settings import Settings
from notifiers.channel import Channel, Delivery, Notice
from notifiers.exceptions import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from notifiers.metrics import NotifierMetrics, notifier_metrics
from notifiers.render import NoticeFacts, Renderer
from notifiers.resilience import CircuitBreaker, TokenBucket

log = structlog.get_logger("forewarn.notifier")

PENDING, SENDING, SENT, FAILED, UNCONFIRMED = "pending", "sending", "sent", "failed", "unconfirmed"
HELD = "held"  # waiting for its channel to be configured
NOT_CONFIGURED = "channel_not_configured"
# The customer opted out of the row's channel after it was planned: never sent, no fallback.
WITHDRAWN = "withdrawn"
OPTED_OUT = "opted_out"
# States in which a notice has reached the customer, or still may.
REACHING = (PENDING, SENDING, SENT, UNCONFIRMED, HELD)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """An outbox row this notifier holds the lease on."""

    id: int
    customer_id: str
    outage_id: str | None
    stage: str
    channel: str
    language: str
    attempts: int
    sequence: int = 0
    maintenance_id: int | None = None
    services: tuple[str, ...] = ()  # the customer's affected services, as planned


@dataclass(frozen=True, slots=True)
class Outcome:
    row: ClaimedRow
    notice: Notice | None
    delivery: Delivery | None = None
    error: DeliveryError | None = None


OnSent = Callable[[ClaimedRow, Notice], Any]


def idempotency_key(row: ClaimedRow) -> str:
    """Stable for customer x outage x stage x sequence x channel: the provider's dedup key."""
    subject = row.outage_id or f"maintenance-{row.maintenance_id}"
    unique = f"{row.customer_id}\n{subject}\n{row.stage}\n{row.sequence}\n{row.channel}"
    return "fw-" + hashlib.sha256(unique.encode()).hexdigest()[:40]


def backoff(attempts: int, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Seconds before attempt `attempts + 1`: exponential with full jitter, at least 1 s."""
    return max(1.0, random.uniform(0, min(cap, base**attempts)))  # noqa: S311 - jitter, not crypto


class Dispatcher:
    """Claim due outbox rows and send them through their channels."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        renderer: Renderer,
        settings: Settings,
        on_sent: OnSent | None = None,
        clock: Clock = utc_now,
        registry: CollectorRegistry = REGISTRY,
        poll_seconds: float = 0.25,
        lease: timedelta = timedelta(minutes=5),
        concurrency: int = 32,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.channels = dict(channels)
        self.renderer = renderer
        self.settings = settings
        self.on_sent = on_sent
        self.clock = clock
        self.metrics: NotifierMetrics = notifier_metrics(registry)
        self.poll_seconds = poll_seconds
        self.lease = lease
        self._limit = asyncio.Semaphore(concurrency)
        rates = {
            "sms": settings.sms_rate_per_second,
            "email": settings.email_rate_per_second,
            "webhook": settings.webhook_rate_per_second,
        }
        self._buckets = {
            name: TokenBucket(
                rates.get(name, 50.0), burst=max(1, int(rates.get(name, 50.0))), clock=monotonic
            )
            for name in self.channels
        }
        self._monotonic = monotonic
        # One breaker per provider, by (channel, endpoint): the endpoint is "" except for
        # webhooks, where each customer's host:port is a provider of its own (one endpoint down
        # must not hold back the others).
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        # Per channel, the endpoints whose breaker is not closed (`forewarn_circuit_open`).
        self._unwell: dict[str, set[str]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; a failing round is logged, counted and retried."""
        try:
            await self._run(stop)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close every channel's connections."""
        for channel in self.channels.values():
            await channel.aclose()

    async def _run(self, stop: asyncio.Event) -> None:
        last_reconcile = 0.0
        while not stop.is_set():
            sent = 0
            try:
                if time.monotonic() - last_reconcile > min(10.0, self.lease.total_seconds() / 2):
                    await self.release_held()
                    await self.reconcile()
                    await self.observe_backlog()
                    last_reconcile = time.monotonic()
                sent = await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop's outermost guard: log, count, go on
                log.exception("dispatch round failed; trying again")
                self.metrics.failed.labels("", "", "", "dispatch_error").inc()
                await asyncio.sleep(1.0)
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)

    async def dispatch_once(self) -> int:
        """Claim one batch of due rows, send them, record the outcomes; return how many."""
        rows = await self.claim(self.settings.dispatch_batch_size)
        if not rows:
            return 0
        notices, opted_out = await self._notices(rows)
        outcomes = await asyncio.gather(
            *(self._send(row, notices.get(row.id)) for row in rows if row.id not in opted_out)
        )
        outcomes += [
            Outcome(row, None, error=PermanentDeliveryError(OPTED_OUT))
            for row in rows
            if row.id in opted_out
        ]
        await self._record(outcomes)
        if self.on_sent is not None:
            for outcome in outcomes:
                if outcome.delivery is not None and outcome.notice is not None:
                    self.on_sent(outcome.row, outcome.notice)
        return len(rows)

    async def claim(self, limit: int) -> list[ClaimedRow]:
        """Move up to `limit` due rows from pending to sending; return them."""
        now = self.clock()
        # The due rows are picked once, in a CTE: PostgreSQL may re-run an IN (subquery) per
        # row, and a LIMIT in it would then not bound the batch.
        due = (
            select(OutboxRow.id)
            .where(OutboxRow.state == PENDING, OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.priority.desc(), OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        statement = (
            update(OutboxRow)
            .where(OutboxRow.id == due.c.id, OutboxRow.state == PENDING)
            .values(state=SENDING, claimed_at=now, attempts=OutboxRow.attempts + 1)
            .returning(
                OutboxRow.id,
                OutboxRow.customer_id,
                OutboxRow.outage_id,
                OutboxRow.stage,
                OutboxRow.channel,
                OutboxRow.language,
                OutboxRow.attempts,
                OutboxRow.sequence,
                OutboxRow.maintenance_id,
                OutboxRow.services,
            )
            .execution_options(synchronize_session=False)
        )
        async with transaction(self.sessions) as session:
            result = await session.execute(statement)
            claimed = (
                ClaimedRow(**{**row._asdict(), "services": tuple(row.services or ())})
                for row in result
            )
            return sorted(claimed, key=lambda r: r.id)

    async def _notices(self, rows: Sequence[ClaimedRow]) -> tuple[dict[int, Notice], set[int]]:
        """The notice of each row, and the rows whose customer opted out of their channel
        since they were planned (a STOP read now, not only when planning)."""
        async with self.sessions() as session:
            customers = {
                c.id: c
                for c in await session.scalars(
                    select(Customer).where(Customer.id.in_({r.customer_id for r in rows}))
                )
            }
            opt_outs = await opt_outs_of(
                session=session, listed={c.id: c.opt_outs for c in customers.values()}
            )
            outages = {
                o.id: o
                for o in await session.scalars(
                    select(Outage).where(Outage.id.in_({r.outage_id for r in rows if r.outage_id}))
                )
            }
            windows = {
                w.id: w
                for w in await session.scalars(
                    select(Maintenance).where(
                        Maintenance.id.in_({r.maintenance_id for r in rows if r.maintenance_id})
                    )
                )
            }
            places = await places_of(
                session=session,
                scopes=[(o.scope_level, o.scope_id) for o in outages.values()]
                + [("place", w.scope_id) for w in windows.values()],
            )
            updates: dict[tuple[str, int], dict[str, Any]] = {}
            wanted = {
                (r.outage_id, r.sequence) for r in rows if r.stage == "update" and r.outage_id
            }
            if wanted:
                entries = await session.scalars(
                    select(TimelineEntry).where(
                        TimelineEntry.outage_id.in_({outage for outage, _ in wanted}),
                        TimelineEntry.kind == "update",
                    )
                )
                for entry in entries:
                    updates[(entry.outage_id, int(entry.message.get("sequence", 0)))] = (
                        entry.message
                    )
        notices: dict[int, Notice] = {}
        opted_out = {r.id for r in rows if r.channel in opt_outs.get(r.customer_id, ())}
        for row in rows:
            customer = customers.get(row.customer_id)
            outage = outages.get(row.outage_id or "")
            window = windows.get(row.maintenance_id or 0)
            if customer is None or (outage is None and window is None):
                continue
            address = {
                "sms": customer.phone,
                "email": customer.email,
                "webhook": customer.webhook_url,
            }.get(row.channel)
            if address is None:
                continue
            if outage is None and window is not None:
                area = places[("place", window.scope_id)].called(row.language)
                notices[row.id] = self._maintenance_notice(row, customer, window, address, area)
                continue
            assert outage is not None  # noqa: S101 - one of the two, checked above
            update = updates.get((row.outage_id or "", row.sequence), {})
            message = update_text(
                update.get("messages") or {},
                update.get("template"),
                row.language,
                update.get("fallback_language"),
            )
            area = places[(outage.scope_level, outage.scope_id)].called(row.language)
            notices[row.id] = self._notice(row, customer, outage, address, message, area)
        return notices, opted_out

    def _unsubscribe(self, customer: Customer, channel: str) -> str | None:
        secret = self.settings.link_secret
        if secret is None:
            return None
        return unsubscribe_url(
            self.settings.public_base_url, secret.get_secret_value(), customer.id, channel
        )

    def _maintenance_notice(
        self, row: ClaimedRow, customer: Customer, window: Maintenance, to: str, area: str
    ) -> Notice:
        return self._rendered(
            row,
            customer,
            to,
            started_at=window.starts_at,
            resolved_at=window.ends_at,
            next_update_due=None,
            eta=None,
            status_url=maintenance_url(
                self.settings.public_base_url, window, timezone=customer.timezone
            ),
            message=window.reason,
            window_start=window.starts_at,
            window_end=window.ends_at,
            area=area,
        )

    def _notice(
        self,
        row: ClaimedRow,
        customer: Customer,
        outage: Outage,
        to: str,
        message: str,
        area: str,
    ) -> Notice:
        return self._rendered(
            row,
            customer,
            to,
            started_at=outage.opened_at or outage.started_at,
            resolved_at=outage.resolved_at,
            next_update_due=outage.next_update_due,
            eta=outage.eta,
            status_url=status_url(
                self.settings.public_base_url, outage, timezone=customer.timezone
            ),
            message=message,
            cause=outage.cause,
            area=area,
        )

    def _rendered(self, row: ClaimedRow, customer: Customer, to: str, **about: Any) -> Notice:
        """Render one row's notice for its customer: what the row and the customer say, and
        `about` (what an outage or a maintenance window says)."""
        unsubscribe = self._unsubscribe(customer, row.channel)
        rendered = self.renderer.render(
            NoticeFacts(
                stage=row.stage,
                language=row.language,
                timezone=customer.timezone,
                locale=customer.locale,
                customer_name=customer.name,
                services=row.services,
                unsubscribe_url=unsubscribe,
                **about,
            ),
            max_sms_segments=self.settings.sms_max_segments,
        )
        return Notice(
            outbox_id=row.id,
            customer_id=row.customer_id,
            outage_id=row.outage_id or f"maintenance-{row.maintenance_id}",
            stage=row.stage,
            channel=row.channel,
            language=row.language,
            to=to,
            subject=rendered.subject,
            text=rendered.sms if row.channel == "sms" else rendered.text,
            html=rendered.html if row.channel == "email" else None,
            idempotency_key=idempotency_key(row),
            unsubscribe_url=unsubscribe,
        )

    async def _send(self, row: ClaimedRow, notice: Notice | None) -> Outcome:
        channel = self.channels.get(row.channel)
        if channel is None:
            return Outcome(row, notice, error=PermanentDeliveryError(NOT_CONFIGURED))
        if notice is None:
            return Outcome(row, notice, error=PermanentDeliveryError("no_address"))
        endpoint = urlsplit(notice.to).netloc if row.channel == "webhook" else ""
        breaker = self._breaker(row.channel, endpoint)
        if not breaker.allow():
            retry = TemporaryDeliveryError(
                "circuit_open", retry_after=self.settings.circuit_reset_seconds
            )
            return Outcome(row, notice, error=retry)
        async with self._limit:
            await self._buckets[row.channel].acquire()
            started = time.perf_counter()
            try:
                delivery = await channel.send(notice)
            except DeliveryError as exc:
                if exc.retriable:
                    breaker.record_failure()
                else:
                    breaker.record_success()  # the provider answered: it is up
                return Outcome(row, notice, error=exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a channel bug must not lose the row
                log.exception("channel raised unexpectedly", channel=row.channel)
                breaker.record_failure()
                return Outcome(row, notice, error=TemporaryDeliveryError("channel_error", str(exc)))
            finally:
                self.metrics.provider_seconds.labels(row.channel, channel.provider).observe(
                    time.perf_counter() - started
                )
                unwell = self._unwell.setdefault(row.channel, set())
                if breaker.state == "closed":
                    unwell.discard(endpoint)
                else:
                    unwell.add(endpoint)
                self.metrics.circuit_open.labels(row.channel, channel.provider).set(len(unwell))
        breaker.record_success()
        return Outcome(row, notice, delivery=delivery)

    def _breaker(self, channel: str, endpoint: str) -> CircuitBreaker:
        breaker = self._breakers.get((channel, endpoint))
        if breaker is None:
            breaker = self._breakers[(channel, endpoint)] = CircuitBreaker(
                self.settings.circuit_failure_threshold,
                self.settings.circuit_reset_seconds,
                clock=self._monotonic,
            )
        return breaker

    async def _record(self, outcomes: Sequence[Outcome]) -> None:
        """Record every outcome of a batch: one executemany per kind of outcome."""
        now = self.clock()
        failed: list[ClaimedRow] = []
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for outcome in outcomes:
            result = self._result(outcome, now)
            if result["state"] == FAILED:
                failed.append(outcome.row)
            groups.setdefault(tuple(sorted(result)), []).append(
                {"row_id": outcome.row.id, **{f"new_{k}": v for k, v in result.items()}}
            )
        table = cast(Table, OutboxRow.__table__)
        async with transaction(self.sessions) as session:
            for columns, params in groups.items():
                statement = (
                    update(table)
                    .where(table.c.id == bindparam("row_id"), table.c.state == SENDING)
                    .values({column: bindparam(f"new_{column}") for column in columns})
                )
                await session.execute(statement, params)
            for row in failed:
                await self._fall_back(session, row, now)

    async def _fall_back(self, session: AsyncSession, row: ClaimedRow, now: datetime) -> None:
        """When no listed channel reached the customer, send this notice on the fallback one."""
        fallback = self.settings.fallback_channel
        if not fallback or fallback == row.channel or fallback not in self.channels:
            return
        siblings = and_(
            OutboxRow.customer_id == row.customer_id,
            OutboxRow.outage_id.is_(None)
            if row.outage_id is None
            else OutboxRow.outage_id == row.outage_id,
            OutboxRow.maintenance_id.is_(None)
            if row.maintenance_id is None
            else OutboxRow.maintenance_id == row.maintenance_id,
            OutboxRow.stage == row.stage,
            OutboxRow.sequence == row.sequence,
        )
        reached = await session.scalar(
            select(func.count()).where(siblings, OutboxRow.state.in_(REACHING))
        )
        if reached:
            return
        customer = await session.get(Customer, row.customer_id)
        address = (
            {"sms": customer.phone, "email": customer.email}.get(fallback) if customer else None
        )
        if customer is None or address is None:
            return
        opted_out = await opt_outs_of(session=session, listed={customer.id: customer.opt_outs})
        if fallback in opted_out[customer.id]:
            return
        if row.maintenance_id is not None:
            return  # planned work is not worth a second channel
        await insert_outbox_rows(
            session=session,
            rows=[
                {
                    "customer_id": row.customer_id,
                    "outage_id": row.outage_id,
                    "stage": row.stage,
                    "sequence": row.sequence,
                    "channel": fallback,
                    "language": row.language,
                    "services": list(row.services),
                    "state": PENDING,
                    "attempts": 0,
                    "priority": 1,
                    "created_at": now,
                    "next_attempt_at": now,
                }
            ],
        )
        self.metrics.fallbacks.labels(row.channel, fallback).inc()
        log.info("notice falls back", outbox_id=row.id, channel=row.channel, to_channel=fallback)

    def _result(self, outcome: Outcome, now: datetime) -> dict[str, Any]:
        row = outcome.row
        provider = getattr(self.channels.get(row.channel), "provider", "none")
        if outcome.delivery is not None:
            self.metrics.sent.labels(row.channel, provider, row.stage, row.language).inc()
            log.debug("notice sent", outbox_id=row.id, channel=row.channel, stage=row.stage)
            return {
                "state": SENT,
                "sent_at": now,
                "provider": outcome.delivery.provider,
                "provider_id": outcome.delivery.provider_id,
                "last_error": None,
            }
        error = outcome.error or TemporaryDeliveryError("no_outcome")
        if error.reason == OPTED_OUT:
            log.info(
                "notice withdrawn: the customer opted out", outbox_id=row.id, channel=row.channel
            )
            self.metrics.withdrawn.labels(row.channel, row.stage).inc()
            return {"state": WITHDRAWN, "last_error": OPTED_OUT}
        if error.reason == NOT_CONFIGURED:
            # Nobody was called: the row waits, unattempted, for a notifier with the channel.
            log.debug("notice held", outbox_id=row.id, channel=row.channel, reason=error.reason)
            return {
                "state": HELD,
                "attempts": max(row.attempts - 1, 0),
                "last_error": error.reason,
            }
        if error.reason == "circuit_open":
            # The provider was not called: this does not count as an attempt.
            return {
                "state": PENDING,
                "attempts": max(row.attempts - 1, 0),
                "next_attempt_at": now + timedelta(seconds=self.settings.circuit_reset_seconds),
                "last_error": error.reason,
            }
        if error.retriable and row.attempts < self.settings.dispatch_max_attempts:
            delay = backoff(row.attempts)
            if isinstance(error, TemporaryDeliveryError) and error.retry_after:
                delay = max(delay, error.retry_after)
            self.metrics.retries.labels(row.channel, provider, error.reason).inc()
            log.warning(
                "notice will be retried",
                outbox_id=row.id,
                channel=row.channel,
                reason=error.reason,
                attempt=row.attempts,
                in_seconds=round(delay, 1),
            )
            return {
                "state": PENDING,
                "next_attempt_at": now + timedelta(seconds=delay),
                "last_error": error.reason,
            }
        self.metrics.failed.labels(row.channel, provider, row.stage, error.reason).inc()
        log.warning("notice failed", outbox_id=row.id, channel=row.channel, reason=error.reason)
        return {"state": FAILED, "provider": provider, "last_error": error.reason}

    async def release_held(self) -> int:
        """Put the held rows of the channels this notifier has back in line, due now."""
        if not self.channels:
            return 0
        async with transaction(self.sessions) as session:
            result = await session.execute(
                update(OutboxRow)
                .where(OutboxRow.state == HELD, OutboxRow.channel.in_(sorted(self.channels)))
                .values(state=PENDING, next_attempt_at=self.clock(), last_error=None)
                .execution_options(synchronize_session=False)
            )
        released = int(result.rowcount)  # type: ignore[attr-defined]
        if released:
            log.info("held notices released", rows=released, channels=sorted(self.channels))
        return released

    async def reconcile(self) -> int:
        """Settle rows whose claim outlived its lease (their notifier died mid-send)."""
        expired_before = self.clock() - self.lease
        settled = 0
        async with transaction(self.sessions) as session:
            for name, channel in self.channels.items():
                result = await session.execute(
                    update(OutboxRow)
                    .where(
                        OutboxRow.state == SENDING,
                        OutboxRow.channel == name,
                        OutboxRow.claimed_at < expired_before,
                    )
                    .values(
                        state=PENDING if channel.idempotent else UNCONFIRMED,
                        last_error="lease_expired",
                    )
                    .execution_options(synchronize_session=False)
                )
                settled += result.rowcount  # type: ignore[attr-defined]
        if settled:
            log.warning("expired claims reconciled", rows=settled)
        return settled

    async def observe_backlog(self) -> None:
        """Update the backlog gauges from the outbox."""
        async with self.sessions() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(OutboxRow.created_at)).where(
                        OutboxRow.state == PENDING
                    )
                )
            ).one()
            held: dict[str, int] = {
                channel: number
                for channel, number in await session.execute(
                    select(OutboxRow.channel, func.count())
                    .where(OutboxRow.state == HELD)
                    .group_by(OutboxRow.channel)
                )
            }
        self.metrics.backlog.set(count)
        age = (self.clock() - oldest).total_seconds() if oldest is not None else 0.0
        self.metrics.oldest_pending_seconds.set(max(0.0, age))
        for channel in ("sms", "email", "webhook"):
            self.metrics.held.labels(channel).set(held.get(channel, 0))
        if held:
            log.warning(
                "notices held: their channel is not configured on this notifier",
                held=held,
                reason=NOT_CONFIGURED,
            )
