"""No gateway, no lost notices: SMS rows wait as `held` and go out, once each, when a
notifier with a gateway starts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from app.settings import Settings
from forewarn.runtime import (
    Hooks,
    Runtime,
    build_channels,
    component_coroutines,
    delivery_warnings,
)
from notifiers.dispatcher import Dispatcher
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.render import Renderer
from notifiers.smtp_sink import SmtpSink
from tests.clock import FakeClock
from tests.factories import make_customer, make_inventory, open_outage_on_node_17

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CUSTOMERS = 6


def dispatcher(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpSink, **settings: Any
) -> Dispatcher:
    configured = Settings(smtp_host=smtp.host, smtp_port=smtp.port, **settings)
    return Dispatcher(
        sessions=sessions,
        channels=build_channels(configured),
        renderer=Renderer(),
        settings=configured,
        clock=FakeClock(T0),
    )


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxRow]:
    async with sessions() as session:
        return list(await session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


async def test_without_a_gateway_sms_waits_held_and_a_restart_with_one_sends_each_once(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session,
            inventory=make_inventory([make_customer(i) for i in range(CUSTOMERS)]),
            services=["tv"],  # e-mail still works: both channels are planned
            at=T0,
        )
        await plan_notices(session=session, event=event, now=T0)

    first = dispatcher(sessions, smtp_server)  # `forewarn all` as it comes: no gateway
    while await first.dispatch_once():
        pass
    await first.observe_backlog()
    await first.aclose()
    sms = [r for r in await outbox(sessions) if r.channel == "sms"]
    assert len(sms) == CUSTOMERS
    assert {(r.state, r.last_error, r.attempts) for r in sms} == {
        ("held", "channel_not_configured", 0)
    }
    assert {r.state for r in await outbox(sessions) if r.channel == "email"} == {"sent"}
    assert first.metrics.held.labels("sms")._value.get() == CUSTOMERS

    second = dispatcher(  # the gateway configured, the notifier restarted
        sessions,
        smtp_server,
        sms_gateway_url=sms_gateway.url,
        sms_gateway_token=SecretStr(sms_gateway.credentials),
    )
    assert await second.release_held() == CUSTOMERS
    while await second.dispatch_once():
        pass
    assert await second.release_held() == 0
    await second.aclose()

    assert {r.state for r in await outbox(sessions)} == {"sent"}
    assert sms_gateway.requests == CUSTOMERS  # one call per notice, no resend
    assert sorted(m.to for m in sms_gateway.messages) == sorted(
        make_customer(i)["phone"] for i in range(CUSTOMERS)
    )
    assert len(smtp_server.messages) == CUSTOMERS  # the e-mails were not sent again


async def test_a_notifier_without_a_gateway_warns_at_start_up(
    sessions: async_sessionmaker[AsyncSession], db_engine: Any
) -> None:
    settings = Settings(metrics_port=0)
    [warning] = delivery_warnings(settings)
    assert "FOREWARN_SMS_GATEWAY_URL" in warning and "held" in warning
    runtime = Runtime(settings=settings, engine=db_engine, sessions=sessions)
    with structlog.testing.capture_logs() as logs:
        coroutines = component_coroutines(runtime, {"notifier"}, asyncio.Event(), Hooks())
    for coroutine in coroutines:
        coroutine.close()
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e.get("setting") for e in warnings] == ["FOREWARN_SMS_GATEWAY_URL"]

    configured = settings.model_copy(
        update={
            "sms_gateway_url": "http://127.0.0.1:9",
            "sms_gateway_token": SecretStr("AC0:secret"),
        }
    )
    assert delivery_warnings(configured) == []
    runtime = Runtime(settings=configured, engine=db_engine, sessions=sessions)
    with structlog.testing.capture_logs() as logs:
        coroutines = component_coroutines(runtime, {"notifier"}, asyncio.Event(), Hooks())
    for coroutine in coroutines:
        coroutine.close()
    assert not [e for e in logs if e["log_level"] == "warning"]
