"""The dispatcher against a real outbox, SMTP server and SMS gateway: sent once, retried right."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.inventory.consent import Source, record_consent
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from app.settings import Settings
from forewarn.runtime import build_channels
from notifiers.channel import Channel, Delivery, Notice
from notifiers.dispatcher import ClaimedRow, Dispatcher
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.render import Renderer
from notifiers.smtp_sink import SmtpSink
from tests.clock import FakeClock
from tests.factories import make_customer, make_inventory, open_outage_on_node_17
from tests.waiting import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    count: int = 3,
    people: list[dict[str, Any]] | None = None,
) -> str:
    """An inventory of `count` customers on node-17 (or these `people`, one device each), an
    open outage there, its outbox rows."""
    people = people if people is not None else [make_customer(i) for i in range(count)]
    inventory = make_inventory(people)
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session,
            inventory=inventory,
            services=["tv"],  # not internet: e-mail still works, both channels are used
            at=T0,
        )
        await plan_notices(session=session, event=event, now=T0)
    return event.outage_id


def make_dispatcher(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
    clock: Callable[[], datetime],
    **settings: Any,
) -> tuple[Dispatcher, list[tuple[ClaimedRow, Notice]]]:
    configured = Settings(
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        sms_gateway_url=sms_gateway.url,
        sms_gateway_token=SecretStr(sms_gateway.credentials),
        public_base_url="https://status.example.net",
        link_secret=SecretStr("test-link-secret"),
        **settings,
    )
    sent: list[tuple[ClaimedRow, Notice]] = []
    dispatcher = Dispatcher(
        sessions=sessions,
        channels=build_channels(configured),
        renderer=Renderer(),
        settings=configured,
        on_sent=lambda row, notice: sent.append((row, notice)),
        clock=clock,
    )
    return dispatcher, sent


async def states(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str], str]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxRow.customer_id, OutboxRow.channel, OutboxRow.state)
        )
        return {(customer, channel): state for customer, channel, state in rows}


async def test_each_pending_notice_is_sent_once_with_the_provider_id_recorded(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=5)
    dispatcher, sent = make_dispatcher(sessions, smtp_server, sms_gateway, FakeClock(T0))

    assert await dispatcher.dispatch_once() == 10
    assert await dispatcher.dispatch_once() == 0

    assert len(sms_gateway.messages) == 5 and len(smtp_server.messages) == 5
    assert set((await states(sessions)).values()) == {"sent"}
    async with sessions() as session:
        ids = {r.provider_id for r in await session.scalars(select(OutboxRow))}
    assert {m.sid for m in sms_gateway.messages} <= ids
    assert {m["Message-ID"] for m in smtp_server.messages} <= ids
    assert len(sent) == 10
    languages = {n.language for _, n in sent}
    assert languages == {"en", "de", "es", "vi", "hi"}
    email = smtp_server.messages[0]
    assert str(email["List-Unsubscribe"]).strip().startswith("<https://status.example.net/u/")
    await dispatcher.aclose()


async def test_a_throttled_sms_waits_for_retry_after_then_goes_out_once(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=1)
    clock = FakeClock(T0)
    dispatcher, _ = make_dispatcher(sessions, smtp_server, sms_gateway, clock)
    sms_gateway.fail_next(1, status=429)

    await dispatcher.dispatch_once()
    async with sessions() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.channel == "sms"))
    assert row is not None
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "http_429")
    assert row.next_attempt_at >= T0 + timedelta(seconds=1)
    assert await dispatcher.dispatch_once() == 0  # not due yet

    clock.now = row.next_attempt_at
    assert await dispatcher.dispatch_once() == 1
    assert len(sms_gateway.messages) == 1
    assert (await states(sessions))[("c-0", "sms")] == "sent"
    await dispatcher.aclose()


async def test_a_permanent_failure_is_recorded_and_never_retried(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=1)
    dispatcher, _ = make_dispatcher(
        sessions, smtp_server, sms_gateway, FakeClock(T0 + timedelta(days=1))
    )
    sms_gateway.fail_next(1, status=401)

    await dispatcher.dispatch_once()
    assert await dispatcher.dispatch_once() == 0

    async with sessions() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.channel == "sms"))
    assert row is not None and (row.state, row.last_error) == ("failed", "auth_failed")
    assert sms_gateway.messages == []
    await dispatcher.aclose()


async def test_retries_stop_after_the_configured_attempts(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=1)
    clock = FakeClock(T0)
    dispatcher, _ = make_dispatcher(
        sessions, smtp_server, sms_gateway, clock, dispatch_max_attempts=3
    )
    sms_gateway.fail_next(10, status=503)
    for _ in range(5):
        await dispatcher.dispatch_once()
        clock.advance(timedelta(hours=1))

    async with sessions() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.channel == "sms"))
    assert row is not None and (row.state, row.attempts, row.last_error) == (
        "failed",
        3,
        "http_503",
    )
    await dispatcher.aclose()


class ProcessDied(BaseException):
    """Not an Exception: nothing in the dispatcher catches it, as nothing survives a kill."""


class DiesOnceSent:
    """A channel whose process dies the moment the provider has taken the notice."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.name = channel.name
        self.provider = channel.provider
        self.idempotent = channel.idempotent

    async def send(self, notice: Notice) -> Delivery:
        await self.channel.send(notice)
        raise ProcessDied

    async def aclose(self) -> None:
        await self.channel.aclose()


async def test_a_notifier_that_died_mid_send_never_causes_a_second_message(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    """The crashed notifier's SMS reached the gateway; its e-mail may have. Neither repeats."""
    await seed(sessions, count=1)
    clock = FakeClock(T0)
    crashed, _ = make_dispatcher(sessions, smtp_server, sms_gateway, clock)
    crashed.channels = {name: DiesOnceSent(c) for name, c in crashed.channels.items()}
    with pytest.raises(ProcessDied):
        await crashed.dispatch_once()  # claims and sends both rows, and dies before recording
    await eventually(lambda: len(smtp_server.messages) >= 1, "the crashed notifier's e-mail")
    assert len(sms_gateway.messages) == 1 and len(smtp_server.messages) == 1

    clock.advance(timedelta(minutes=10))
    survivor, _ = make_dispatcher(sessions, smtp_server, sms_gateway, clock)
    assert await survivor.reconcile() == 2
    await survivor.dispatch_once()

    assert len(sms_gateway.messages) == 1  # the gateway answered with the first message's id
    assert len(smtp_server.messages) == 1
    assert await states(sessions) == {("c-0", "sms"): "sent", ("c-0", "email"): "unconfirmed"}
    async with sessions() as session:
        sms_row = await session.scalar(select(OutboxRow).where(OutboxRow.channel == "sms"))
    assert sms_row is not None and sms_row.provider_id == sms_gateway.messages[0].sid
    await crashed.aclose()
    await survivor.aclose()


async def test_two_notifiers_on_one_outbox_send_every_notice_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=60)
    first, _ = make_dispatcher(
        sessions, smtp_server, sms_gateway, FakeClock(T0), dispatch_batch_size=7
    )
    second, _ = make_dispatcher(
        sessions, smtp_server, sms_gateway, FakeClock(T0), dispatch_batch_size=7
    )

    async def drain(dispatcher: Dispatcher) -> None:
        while await dispatcher.dispatch_once() > 0:
            await asyncio.sleep(0)

    await asyncio.gather(drain(first), drain(second), drain(first))
    assert len(sms_gateway.messages) == 60
    assert len({m.to for m in sms_gateway.messages}) == 60
    assert len(smtp_server.messages) == 60
    assert set((await states(sessions)).values()) == {"sent"}
    await first.aclose()
    await second.aclose()


async def test_a_notice_for_a_channel_with_no_provider_is_held_not_failed(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=2)
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.customer_id == "c-1", OutboxRow.channel == "sms")
            .values(channel="webhook")
        )
    dispatcher, _ = make_dispatcher(sessions, smtp_server, sms_gateway, FakeClock(T0))
    await dispatcher.dispatch_once()
    async with sessions() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.channel == "webhook"))
    assert row is not None and (row.state, row.last_error) == ("held", "channel_not_configured")
    assert len(sms_gateway.messages) == 1
    await dispatcher.aclose()


async def test_a_claim_takes_no_more_rows_than_asked(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=10)
    dispatcher, _ = make_dispatcher(sessions, smtp_server, sms_gateway, FakeClock(T0))
    first, second = await dispatcher.claim(3), await dispatcher.claim(3)
    assert len(first) == 3 and len(second) == 3
    assert not {r.id for r in first} & {r.id for r in second}
    await dispatcher.aclose()


async def test_one_webhook_endpoint_down_does_not_hold_back_the_others(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    from tests.integration.test_webhook import SECRET, WebhookReceiver

    with WebhookReceiver() as down, WebhookReceiver() as up:
        for _ in range(10):
            down.fail_next(500)
        people = [make_customer(i) for i in range(6)]
        for i, person in enumerate(people):
            person["channels"] = ["webhook"]
            person["webhook_url"] = (down if i < 3 else up).url
        await seed(sessions, people=people)
        dispatcher, _ = make_dispatcher(
            sessions,
            smtp_server,
            sms_gateway,
            FakeClock(T0),
            webhook_signing_secret=SecretStr(SECRET),
            circuit_failure_threshold=2,
            dispatch_batch_size=1,
        )
        try:
            for _ in range(6):  # one row a round: the three for `down` come first
                await dispatcher.dispatch_once()
        finally:
            await dispatcher.aclose()
        called_down = 10 - down.failures_left
        received_up = len(up.received)
    async with sessions() as session:
        rows = list(await session.scalars(select(OutboxRow).order_by(OutboxRow.customer_id)))
    assert called_down == 2  # its breaker opened after two failures
    assert [r.last_error for r in rows[:3]] == ["http_500", "http_500", "circuit_open"]
    assert received_up == 3  # the other endpoint's breaker stayed closed
    assert [r.state for r in rows[3:]] == ["sent"] * 3


async def test_a_notice_planned_before_a_stop_is_withdrawn_not_sent_nor_moved_to_the_fallback(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    await seed(sessions, count=2)  # c-0 and c-1, each planned on SMS and e-mail
    async with transaction(sessions) as session:
        # c-0 texts STOP after the notices were planned, before they go out.
        record_consent(
            session=session,
            customer_id="c-0",
            channel="sms",
            opted_out=True,
            source=Source.SMS_KEYWORD,
            at=T0,
        )
    dispatcher, _ = make_dispatcher(sessions, smtp_server, sms_gateway, FakeClock(T0))

    assert await dispatcher.dispatch_once() == 4
    assert await dispatcher.dispatch_once() == 0
    await dispatcher.aclose()

    assert [m.to for m in sms_gateway.messages] == [make_customer(1)["phone"]]
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(
        make_customer(i)["email"] for i in range(2)
    )
    assert await states(sessions) == {
        ("c-0", "sms"): "withdrawn",
        ("c-0", "email"): "sent",
        ("c-1", "sms"): "sent",
        ("c-1", "email"): "sent",
    }
