"""Everything a customer experiences after `detected`: updates, the kept promise, the night,
flaps, surveys, fallbacks and a failing provider — through the API, the planner and the
dispatcher, against a real database, SMTP server and HTTP gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditEntry
from app.db import transaction
from app.main import create_app
from app.notifications.models import OutboxRow
from app.notifications.planner import PlanPolicy, plan_notices
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState, Transition
from app.outages.models import Outage, TimelineEntry
from app.settings import Role, Settings
from consumers.outage_events import Planner
from forewarn.runtime import build_channels
from notifiers.dispatcher import Dispatcher
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.render import Renderer
from notifiers.segments import sms_length
from notifiers.smtp_sink import SmtpSink
from tests.clock import FakeClock
from tests.factories import apply_transition, make_inventory, make_rule
from tests.integration.api_client import TOKENS, ClientFactory, api_settings, client_factory

pytestmark = pytest.mark.integration

RULE = make_rule(severity="major", services=["internet"])


def customer(i: int, **changes: Any) -> dict[str, Any]:
    base = {
        "id": f"c-{i}",
        "name": f"Kunde{i} Muster",
        "phone": f"+49151{10000000 + i}",
        "email": f"c{i}@example.com",
        "language": ["de", "en", "es", "vi", "hi"][i % 5],
        "timezone": "Europe/Berlin",
        "channels": ["sms"],
        "devices": [f"cpe-{i}"],
    }
    return {**base, **changes}


@pytest.fixture
async def world(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> AsyncIterator[dict[str, Any]]:
    settings = api_settings(
        database_url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        sms_gateway_url=sms_gateway.url,
        sms_gateway_token=SecretStr(sms_gateway.credentials),
        resolve_hold_minutes=10,
        circuit_failure_threshold=3,
    )
    clock = FakeClock()
    dispatcher = Dispatcher(
        sessions=sessions,
        channels=build_channels(settings),
        renderer=Renderer(),
        settings=settings,
        clock=clock,
        monotonic=clock.monotonic,
    )
    yield {
        "settings": settings,
        "client": client_factory(settings, sessions),
        "clock": clock,
        "dispatcher": dispatcher,
        "sessions": sessions,
    }
    await dispatcher.aclose()


async def setup(world: dict[str, Any], customers: list[dict[str, Any]]) -> tuple[int, str]:
    """Load the inventory and the rule, open an outage on node-17 and plan its notices."""
    client: ClientFactory = world["client"]
    async with client() as api:
        assert (await api.put("/v1/inventory", json=make_inventory(customers))).status_code == 200
        rule_id = (await api.post("/v1/rules", json=RULE)).json()["id"]
    event = await transition(world, rule_id, OutageState.OPEN, world["clock"].now)
    return rule_id, event.outage_id


async def transition(
    world: dict[str, Any],
    rule_id: int,
    state: OutageState,
    at: datetime,
    services: tuple[str, ...] = ("internet",),
) -> OutageEvent:
    sessions: async_sessionmaker[AsyncSession] = world["sessions"]
    settings: Settings = world["settings"]
    async with transaction(sessions) as session:
        event = await apply_transition(
            session=session,
            transition=Transition(
                rule_id=rule_id,
                rule_version=1,
                rule_name=RULE["name"],
                scope_level="node",
                scope_id="node-17",
                to_state=state,
                at=at,
                started_at=at,
                severity="major",
                services=services,
            ),
            next_update_interval=settings.next_update_interval,
            clock=world["clock"],
        )
        assert event is not None
        policy = PlanPolicy(resolve_hold=timedelta(minutes=settings.resolve_hold_minutes))
        await plan_notices(session=session, event=event, now=world["clock"].now, policy=policy)
    return event


async def rows(world: dict[str, Any]) -> list[OutboxRow]:
    async with world["sessions"]() as session:
        return list(await session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


async def drain(world: dict[str, Any]) -> None:
    while await world["dispatcher"].dispatch_once() > 0:
        pass


async def test_noc_updates_reach_everyone_told_in_their_language_and_promise_the_next(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    _, outage_id = await setup(world, [customer(0), customer(1)])
    await drain(world)
    client: ClientFactory = world["client"]
    async with client(Role.ENGINEER) as api:
        ack = await api.post(f"/v1/outages/{outage_id}/acknowledge")
        first = await api.post(
            f"/v1/outages/{outage_id}/updates",
            json={
                "messages": {
                    "en": "A fibre was cut by roadworks.",
                    "de": "Bagger hat Faser gekappt.",
                },
                "cause": "fibre cut",
            },
        )
        second = await api.post(
            f"/v1/outages/{outage_id}/updates", json={"template": "fix_applied"}
        )
        bad = await api.post(f"/v1/outages/{outage_id}/updates", json={"messages": {"de": "x"}})
    assert ack.json()["state"] == "open"
    assert first.status_code == 201, first.text
    assert first.json()["outage"]["state"] == "identified"
    assert first.json()["notices_planned"] == 2
    assert second.json()["outage"]["state"] == "monitoring"
    assert bad.status_code == 422
    world["clock"].now = datetime.now(UTC) + timedelta(seconds=1)  # the API planned at real time
    await drain(world)

    bodies = [(m.to, m.body) for m in sms_gateway.messages]
    assert len(bodies) == 6  # detected + two updates, to two customers
    german = [b for to, b in bodies if to == "+4915110000000"]
    english = [b for to, b in bodies if to == "+4915110000001"]
    assert "Bagger hat Faser gekappt." in german[1]
    assert "A fibre was cut by roadworks." in english[1]
    assert "Die Störung ist behoben" in german[2]
    async with world["sessions"]() as session:
        outage = await session.get(Outage, outage_id)
    assert outage is not None and outage.update_sequence == 2
    assert outage.acknowledged_by == "engineer"

    page_path = f"/o/{outage.public_token}"
    async with client(None) as anonymous:
        german = await anonymous.get(page_path, headers={"Accept-Language": "de-DE,de;q=0.9"})
        vietnamese = await anonymous.get(page_path, params={"lang": "vi"})
    assert "Behoben, wird überwacht" in german.text  # monitoring, in German
    assert "Bagger hat Faser gekappt." in german.text  # the NOC's German words on the timeline
    assert "+49151" not in german.text and "Kunde" not in german.text  # no personal data
    assert "Diễn biến" in vietnamese.text


async def test_a_promise_that_falls_due_sends_a_still_working_update_and_a_survey_follows(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    rule_id, outage_id = await setup(world, [customer(1)])
    clock: FakeClock = world["clock"]
    planner = Planner(settings=world["settings"], sessions=world["sessions"], clock=clock)
    await drain(world)

    await planner.keep_promises()  # nothing is due yet
    clock.advance(timedelta(minutes=31))
    await planner.keep_promises()
    await planner.keep_promises()  # ... and it is posted once
    await drain(world)
    [_, update] = [m.body for m in sms_gateway.messages]
    assert "still working" in update and "Kunde1" in update

    await transition(world, rule_id, OutageState.RESOLVED, clock.now)
    clock.advance(timedelta(minutes=11))  # the resolved notice is held 10 minutes
    await drain(world)
    clock.advance(timedelta(minutes=60))
    await planner.keep_promises()
    await drain(world)
    stages = [(r.stage, r.sequence, r.state) for r in await rows(world)]
    assert stages == [
        ("detected", 0, "sent"),
        ("update", 1, "sent"),
        ("resolved", 0, "sent"),
        ("survey", 0, "sent"),
    ]
    assert "1" in sms_gateway.messages[-1].body and "5" in sms_gateway.messages[-1].body
    async with world["sessions"]() as session:
        outage = await session.get(Outage, outage_id)
    assert outage is not None and outage.survey_planned_at is not None


async def test_quiet_hours_hold_the_news_and_a_night_outage_becomes_one_morning_notice(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    clock.now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 02:00 in Berlin
    night_owl = customer(1, quiet_hours={"start": "22:00", "end": "07:00"})
    priority = customer(2, quiet_hours={"start": "22:00", "end": "07:00"}, priority=True)
    rule_id, _ = await setup(world, [night_owl, priority])
    await drain(world)
    assert [m.to for m in sms_gateway.messages] == ["+4915110000002"]  # priority: at once

    clock.advance(timedelta(hours=2))
    await transition(world, rule_id, OutageState.RESOLVED, clock.now)
    clock.now = datetime(2026, 11, 24, 6, 0, 1, tzinfo=UTC)  # 07:00:01 in Berlin
    await drain(world)

    planned = {(r.customer_id, r.stage): r.state for r in await rows(world)}
    assert planned == {
        ("c-1", "detected"): "superseded",
        ("c-1", "overnight"): "sent",
        ("c-2", "detected"): "sent",
        ("c-2", "resolved"): "sent",
    }
    overnight = sms_gateway.messages[1].body
    assert sms_gateway.messages[1].to == "+4915110000001"
    # Berlin time, in the format of English in Germany (en_DE), no longer the US one.
    assert "24/11/2026, 02:00" in overnight and "24/11/2026, 04:00" in overnight


async def test_a_clear_that_does_not_hold_tells_nobody_resolved_then_down_again(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    rule_id, first_id = await setup(world, [customer(1)])
    await drain(world)
    await transition(world, rule_id, OutageState.RESOLVED, clock.now)
    clock.advance(timedelta(minutes=3))  # the clear held only 3 of the 10 minutes
    second = await transition(world, rule_id, OutageState.OPEN, clock.now)
    clock.advance(timedelta(minutes=20))
    await drain(world)

    states = {(r.outage_id, r.stage): r.state for r in await rows(world)}
    assert states == {
        (first_id, "detected"): "sent",
        (first_id, "resolved"): "superseded",
        (second.outage_id, "detected"): "superseded",
    }
    assert len(sms_gateway.messages) == 1
    await transition(world, rule_id, OutageState.RESOLVED, clock.now)
    clock.advance(timedelta(minutes=11))
    await drain(world)
    assert len(sms_gateway.messages) == 2  # told once it is really over


async def test_a_bounced_only_channel_falls_back_to_sms(
    world: dict[str, Any], smtp_server: SmtpSink, sms_gateway: SmsGatewaySimulator
) -> None:
    mailer = customer(1, channels=["email"], email="bounce@example.com")
    _, outage_id = await setup(world, [mailer])
    smtp_server.refuse(True)  # 451: temporary, retried with backoff ...
    dispatcher: Dispatcher = world["dispatcher"]
    clock: FakeClock = world["clock"]
    for _ in range(world["settings"].dispatch_max_attempts):
        await dispatcher.dispatch_once()
        clock.advance(timedelta(hours=1))
    await drain(world)
    channels = {(r.channel, r.state) for r in await rows(world)}
    assert channels == {("email", "failed"), ("sms", "sent")}
    assert [m.to for m in sms_gateway.messages] == ["+4915110000001"]


async def test_a_failing_gateway_opens_the_circuit_and_nothing_is_lost(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    await setup(world, [customer(i) for i in range(6)])
    sms_gateway.fail_next(3, status=503)
    dispatcher: Dispatcher = world["dispatcher"]
    dispatcher.settings = dispatcher.settings.model_copy(update={"dispatch_batch_size": 1})
    clock: FakeClock = world["clock"]
    for _ in range(5):
        await dispatcher.dispatch_once()
    requests_while_open = sms_gateway.requests
    assert requests_while_open == 3  # the breaker opened after 3 failures and kept it closed
    errors = {r.last_error for r in await rows(world) if r.state == "pending"}
    assert "circuit_open" in errors
    waiting = [r for r in await rows(world) if r.last_error == "circuit_open"]
    assert waiting and all(r.attempts == 0 for r in waiting)  # not called: not an attempt
    clock.advance(timedelta(hours=1))  # past the retry times and the breaker's reset
    await drain(world)
    assert len({m.to for m in sms_gateway.messages}) == 6


async def test_planned_work_is_announced_started_and_completed_with_its_own_page(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    client: ClientFactory = world["client"]
    customers = [customer(0), customer(1)]
    start = clock.now + timedelta(hours=2)
    async with client() as api:
        assert (await api.put("/v1/inventory", json=make_inventory(customers))).status_code == 200
        created = await api.post(
            "/v1/maintenance",
            json={
                "scope": "node-17",
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
                "reason": "Fibre upgrade",
                "services": ["internet"],
            },
        )
    assert created.status_code == 201, created.text
    planner = Planner(settings=world["settings"], sessions=world["sessions"], clock=clock)

    await planner.keep_promises()
    await planner.keep_promises()  # planned once
    await drain(world)
    clock.now = start + timedelta(minutes=1)
    await planner.keep_promises()
    await drain(world)
    clock.now = start + timedelta(hours=1, minutes=11)  # the end, plus the 10-minute hold
    await planner.keep_promises()
    await drain(world)

    stages = sorted((r.customer_id, r.stage, r.state) for r in await rows(world))
    assert stages == sorted(
        (c, stage, "sent")
        for c in ("c-0", "c-1")
        for stage in ("maintenance_scheduled", "maintenance_started", "maintenance_completed")
    )
    first = sms_gateway.messages[0].body
    link = first[first.index("https://status.example.net/m/") :].split()[0]
    async with client(None) as anonymous:
        page = await anonymous.get(link.removeprefix("https://status.example.net"))
    assert page.status_code == 200 and "Fibre upgrade" in page.text


async def test_two_rules_on_one_place_make_one_we_know_and_one_fixed(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    first_rule, _ = await setup(world, [customer(1)])
    client: ClientFactory = world["client"]
    async with client() as api:
        second_rule = (await api.post("/v1/rules", json={**RULE, "name": "calls-up"})).json()["id"]
    await transition(world, second_rule, OutageState.OPEN, clock.now)
    clock.advance(timedelta(minutes=1))
    await drain(world)
    assert len(sms_gateway.messages) == 1  # one "we know", not two

    await transition(world, first_rule, OutageState.RESOLVED, clock.now)
    clock.advance(timedelta(minutes=11))
    await drain(world)
    assert len(sms_gateway.messages) == 1  # the other outage still holds: not "fixed" yet

    await transition(world, second_rule, OutageState.RESOLVED, clock.now)
    clock.advance(timedelta(minutes=11))
    await drain(world)
    assert len(sms_gateway.messages) == 2  # ... and "fixed" once, when both are over


async def test_a_notice_waiting_for_a_retry_is_not_mistaken_for_one_held_for_the_night(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    rule_id, _ = await setup(world, [customer(1)])
    sms_gateway.fail_next(1, status=503)
    await world["dispatcher"].dispatch_once()  # fails: retried after a backoff
    await transition(world, rule_id, OutageState.RESOLVED, clock.now)
    clock.advance(timedelta(hours=1))
    await drain(world)
    stages = sorted((r.stage, r.state) for r in await rows(world))
    assert stages == [("detected", "sent"), ("resolved", "sent")]


# An outage of three services, and customers whose devices carry only some of them.
ALL_THREE = ("internet", "tv", "voice")


def with_device_services(inventory: dict[str, Any], services: dict[str, list[str]]) -> None:
    for device in inventory["devices"]:
        device["services"] = services[device["id"]]


def words(body: str) -> str:
    """A notice without its links (a random token could spell "TV")."""
    return " ".join(w for w in body.split() if not w.startswith("https://"))


async def test_each_customer_hears_of_their_own_services_at_every_stage(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator, smtp_server: SmtpSink
) -> None:
    clock: FakeClock = world["clock"]
    client: ClientFactory = world["client"]
    internet_only = customer(1)  # en
    internet_tv = customer(5)  # de
    phone_only = customer(2, channels=["email"])  # es
    inventory = make_inventory([internet_only, internet_tv, phone_only])
    with_device_services(
        inventory, {"cpe-1": ["internet"], "cpe-5": ["internet", "tv"], "cpe-2": ["voice"]}
    )
    async with client() as api:
        assert (await api.put("/v1/inventory", json=inventory)).status_code == 200
        rule_id = (await api.post("/v1/rules", json=RULE)).json()["id"]
    event = await transition(world, rule_id, OutageState.OPEN, clock.now, services=ALL_THREE)
    await drain(world)
    async with client(Role.ENGINEER) as api:
        update = await api.post(
            f"/v1/outages/{event.outage_id}/updates", json={"template": "repair_in_progress"}
        )
    assert update.status_code == 201, update.text
    clock.now = datetime.now(UTC) + timedelta(seconds=1)  # the API planned at real time
    await drain(world)
    await transition(world, rule_id, OutageState.RESOLVED, clock.now, services=ALL_THREE)
    clock.advance(timedelta(minutes=11))
    await drain(world)
    planner = Planner(settings=world["settings"], sessions=world["sessions"], clock=clock)
    clock.advance(timedelta(minutes=61))
    await planner.keep_promises()  # the survey
    await drain(world)

    english = [words(m.body) for m in sms_gateway.messages if m.to == internet_only["phone"]]
    german = [words(m.body) for m in sms_gateway.messages if m.to == internet_tv["phone"]]
    assert len(english) == len(german) == 4  # detected, update, resolved, survey
    for body in english:
        assert "internet" in body and "TV" not in body and "phone" not in body, body
    assert "your internet is disrupted" in english[0]
    for body in german:
        assert "Internet und TV" in body and "Telefon" not in body, body
    mails = [m for m in smtp_server.messages if m["To"] == phone_only["email"]]
    assert len(mails) == 3  # detected, update, resolved: no survey by e-mail
    for mail in mails:
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html = mail.get_body(preferencelist=("html",)).get_content()
        for part in (str(mail["Subject"]), words(text), words(html)):
            assert "teléfono" in part and "internet" not in part.lower(), part
            assert "televisión" not in part, part
    planned = {(r.customer_id, r.stage): r.services for r in await rows(world)}
    assert planned[("c-1", "resolved")] == ["internet"]
    assert planned[("c-5", "update")] == ["internet", "tv"]
    assert planned[("c-2", "detected")] == ["voice"]


async def test_the_overnight_notice_names_the_customers_own_services(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    clock.now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 02:00 in Berlin
    client: ClientFactory = world["client"]
    night_owl = customer(1, quiet_hours={"start": "22:00", "end": "07:00"})
    inventory = make_inventory([night_owl])
    with_device_services(inventory, {"cpe-1": ["tv"]})
    async with client() as api:
        assert (await api.put("/v1/inventory", json=inventory)).status_code == 200
        rule_id = (await api.post("/v1/rules", json=RULE)).json()["id"]
    await transition(world, rule_id, OutageState.OPEN, clock.now, services=ALL_THREE)
    clock.advance(timedelta(hours=2))
    await transition(world, rule_id, OutageState.RESOLVED, clock.now, services=ALL_THREE)
    clock.now = datetime(2026, 11, 24, 6, 0, 1, tzinfo=UTC)  # 07:00:01 in Berlin
    await drain(world)

    [overnight] = [words(m.body) for m in sms_gateway.messages]
    assert "your TV was disrupted" in overnight, overnight
    assert "internet" not in overnight and "phone" not in overnight


async def test_a_fallback_notice_names_the_same_services_as_the_one_that_failed(
    world: dict[str, Any], smtp_server: SmtpSink, sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    client: ClientFactory = world["client"]
    mailer = customer(1, channels=["email"], email="bounce@example.com")
    inventory = make_inventory([mailer])
    with_device_services(inventory, {"cpe-1": ["tv"]})
    async with client() as api:
        assert (await api.put("/v1/inventory", json=inventory)).status_code == 200
        rule_id = (await api.post("/v1/rules", json=RULE)).json()["id"]
    await transition(world, rule_id, OutageState.OPEN, clock.now, services=ALL_THREE)
    smtp_server.refuse(True)
    for _ in range(world["settings"].dispatch_max_attempts):
        await world["dispatcher"].dispatch_once()
        clock.advance(timedelta(hours=1))
    await drain(world)

    [sms] = [words(m.body) for m in sms_gateway.messages]
    assert "your TV is disrupted" in sms and "internet" not in sms, sms


async def test_planned_work_names_the_customers_own_services_it_interrupts(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    clock: FakeClock = world["clock"]
    client: ClientFactory = world["client"]
    inventory = make_inventory([customer(1)])
    with_device_services(inventory, {"cpe-1": ["tv", "voice"]})
    start = clock.now + timedelta(hours=2)
    window = {
        "scope": "node-17",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "reason": "Fibre upgrade",
        "services": ["internet", "tv"],
    }
    async with client() as api:
        assert (await api.put("/v1/inventory", json=inventory)).status_code == 200
        assert (await api.post("/v1/maintenance", json=window)).status_code == 201
    planner = Planner(settings=world["settings"], sessions=world["sessions"], clock=clock)
    await planner.keep_promises()
    await drain(world)

    [scheduled] = [words(m.body) for m in sms_gateway.messages]
    assert "planned work on your TV:" in scheduled, scheduled
    assert "internet" not in scheduled and "phone" not in scheduled


async def update_rows(world: dict[str, Any]) -> list[OutboxRow]:
    return [r for r in await rows(world) if r.stage == "update"]


async def test_an_update_leaving_out_a_language_its_customers_read_is_refused_naming_it(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    # German, English, Vietnamese and Hindi customers.
    _, outage_id = await setup(world, [customer(0), customer(1), customer(3), customer(4)])
    await drain(world)
    client: ClientFactory = world["client"]
    path = f"/v1/outages/{outage_id}/updates"
    partial = {"en": "The damaged cable is being replaced.", "de": "Das Kabel wird ersetzt."}
    async with client(Role.ENGINEER) as api:
        refused = await api.post(path, json={"messages": partial})
        assert await update_rows(world) == []
        unknown_fallback = await api.post(
            path, json={"messages": partial, "fallback_language": "es"}
        )
        every = await api.post(
            path,
            json={
                "messages": {
                    **partial,
                    "vi": "Cáp bị hỏng đang được thay.",
                    "hi": "खराब केबल बदली जा रही है।",
                }
            },
        )
        chosen = await api.post(path, json={"messages": partial, "fallback_language": "en"})
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "messages" and "hi, vi" in error["reason"]
    assert unknown_fallback.status_code == 422
    assert [e["field"] for e in unknown_fallback.json()["errors"]] == ["fallback_language"]
    assert every.status_code == 201, every.text
    assert chosen.status_code == 201, chosen.text
    world["clock"].now = datetime.now(UTC) + timedelta(seconds=1)  # the API planned at real time
    await drain(world)

    def told(phone: str) -> list[str]:
        return [m.body for m in sms_gateway.messages if m.to == phone]

    hindi, vietnamese = told(customer(4)["phone"]), told(customer(3)["phone"])
    assert len(hindi) == len(vietnamese) == 3  # detected and the two accepted updates
    assert "खराब केबल बदली जा रही है।" in hindi[1] and "damaged cable" not in hindi[1]
    assert "Cáp bị hỏng đang được thay." in vietnamese[1]
    assert "The damaged cable is being replaced." in hindi[2]  # the NOC chose English for them
    async with world["sessions"]() as session:
        outage = await session.get(Outage, outage_id)
    assert outage is not None and outage.update_sequence == 2


async def test_an_update_that_tells_customers_nothing_is_refused_and_texts_nobody(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    _, outage_id = await setup(world, [customer(1)])
    await drain(world)
    client: ClientFactory = world["client"]
    path = f"/v1/outages/{outage_id}/updates"
    eta = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat()
    async with client(Role.ENGINEER) as api:
        empty = await api.post(path, json={})
        identified = await api.post(path, json={"eta": eta})
        same_state = await api.post(path, json={"state": "identified"})
        same_eta = await api.post(path, json={"eta": eta})
    assert empty.status_code == 422, empty.text
    assert empty.json()["errors"][0]["field"] == "body"
    assert identified.status_code == 201, identified.text
    assert same_state.status_code == 422 and same_eta.status_code == 422
    world["clock"].now = datetime.now(UTC) + timedelta(seconds=1)
    await drain(world)
    assert len(sms_gateway.messages) == 2  # detected, and the update with the ETA


NOTE = "Splice crew late; contact Bob at +49 151 99998888 before telling anyone"


def everything_in(mail: Any) -> str:
    """Every header and every text part of an e-mail, decoded."""
    headers = " ".join(f"{name}: {value}" for name, value in mail.items())
    parts = [p.get_content() for p in mail.walk() if p.get_content_maintype() == "text"]
    return headers + " ".join(parts)


def leaks(text: str) -> bool:
    return "Bob" in text or "99998888" in text or "Splice crew" in text


async def test_an_internal_note_never_reaches_a_customer_and_the_noc_sees_it(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator, smtp_server: SmtpSink
) -> None:
    texting = customer(0)  # de, SMS
    mailing = customer(1, channels=["email"])  # en, e-mail
    _, outage_id = await setup(world, [texting, mailing])
    client: ClientFactory = world["client"]
    async with client(Role.ENGINEER) as api:
        ack = await api.post(f"/v1/outages/{outage_id}/acknowledge", json={"note": "on it, Bob"})
        update = await api.post(
            f"/v1/outages/{outage_id}/updates",
            json={
                "messages": {"en": "A fibre was cut.", "de": "Eine Faser wurde gekappt."},
                "cause": "Fibre cut by roadworks",
                "note": NOTE,
            },
        )
        later = await api.post(f"/v1/outages/{outage_id}/acknowledge", json={"note": NOTE})
        detail = await api.get(f"/v1/outages/{outage_id}")
        audit = await api.get("/v1/audit", params={"entity": "outage", "entity_id": outage_id})
    assert ack.status_code == 200 and later.status_code == 200, later.text
    assert update.status_code == 201, update.text
    world["clock"].now = datetime.now(UTC) + timedelta(seconds=1)  # the API planned at real time
    await drain(world)

    sms = [m.body for m in sms_gateway.messages]
    mails = [everything_in(m) for m in smtp_server.messages]
    assert len(sms) == 2 and len(mails) == 2  # detected and the update, to each
    assert "Eine Faser wurde gekappt." in sms[1] and "A fibre was cut." in mails[1]
    assert not any(leaks(body) for body in sms + mails)
    async with world["sessions"]() as session:
        outage = await session.get(Outage, outage_id)
    assert outage is not None
    async with client(None) as anonymous:
        for language in ("en", "de", "es", "vi", "hi"):
            page = await anonymous.get(f"/o/{outage.public_token}", params={"lang": language})
            assert page.status_code == 200 and not leaks(page.text), language
    assert "Fibre cut by roadworks" in page.text  # the cause is public
    notes = [e["message"].get("note") for e in detail.json()["timeline"]]
    assert [n for n in notes if n] == ["on it, Bob", NOTE, NOTE]
    assert [e["kind"] for e in detail.json()["timeline"] if e["message"].get("note")] == [
        "acknowledged",
        "update",
        "note",
    ]
    noted = [e["after"]["note"] for e in audit.json() if "note" in e["after"]]
    assert noted == [NOTE.replace("+49 151 99998888", "[phone]")] * 2 + ["on it, Bob"]


async def test_a_maintenance_note_stays_internal_while_its_reason_is_told(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator, smtp_server: SmtpSink
) -> None:
    clock: FakeClock = world["clock"]
    client: ClientFactory = world["client"]
    customers = [customer(0), customer(1, channels=["email"])]
    start = clock.now + timedelta(hours=2)
    window = {
        "scope": "node-17",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "reason": "Fibre upgrade",
        "note": NOTE,
        "services": ["internet"],
    }
    async with client() as api:
        assert (await api.put("/v1/inventory", json=make_inventory(customers))).status_code == 200
        created = await api.post("/v1/maintenance", json=window)
        window_id = created.json()["id"]
        changed = await api.patch(
            f"/v1/maintenance/{window_id}",
            json={"reason": "Faster fibre for the street", "note": NOTE + " (again)"},
        )
        listed = await api.get("/v1/maintenance")
        audit = await api.get(
            "/v1/audit", params={"entity": "maintenance", "entity_id": str(window_id)}
        )
    assert created.status_code == 201, created.text
    assert created.json()["note"] == NOTE
    assert changed.status_code == 200, changed.text
    assert listed.json()[0]["note"] == NOTE + " (again)"
    assert [e["action"] for e in audit.json()] == ["update", "create"]
    assert "[phone]" in audit.json()[0]["after"]["note"]
    planner = Planner(settings=world["settings"], sessions=world["sessions"], clock=clock)
    for moment in (clock.now, start + timedelta(minutes=1), start + timedelta(hours=1, minutes=11)):
        clock.now = moment
        await planner.keep_promises()
        await drain(world)

    sms = [m.body for m in sms_gateway.messages]
    mails = [everything_in(m) for m in smtp_server.messages]
    assert len(sms) == 3 and len(mails) == 3  # scheduled, started, completed
    assert "Faster fibre for the street" in mails[0]  # the reason is public
    assert not any(leaks(body) for body in sms + mails)
    link = sms[0][sms[0].index("https://status.example.net/m/") :].split()[0]
    async with client(None) as anonymous:
        page = await anonymous.get(link.removeprefix("https://status.example.net"))
    assert page.status_code == 200 and "Faster fibre" in page.text and not leaks(page.text)


async def test_a_maintenance_change_must_change_something_and_keep_a_reason(
    world: dict[str, Any],
) -> None:
    client: ClientFactory = world["client"]
    start = world["clock"].now + timedelta(hours=2)
    window = {
        "scope": "node-17",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "reason": "Fibre upgrade",
        "note": "internal",
    }
    async with client() as api:
        await api.put("/v1/inventory", json=make_inventory([customer(0)]))
        window_id = (await api.post("/v1/maintenance", json=window)).json()["id"]
        nothing = await api.patch(f"/v1/maintenance/{window_id}", json={})
        no_reason = await api.patch(f"/v1/maintenance/{window_id}", json={"reason": None})
        cleared = await api.patch(f"/v1/maintenance/{window_id}", json={"note": None})
        missing = await api.patch("/v1/maintenance/999", json={"note": "x"})
    assert nothing.status_code == 422 and no_reason.status_code == 422
    assert cleared.status_code == 200 and cleared.json()["note"] is None
    assert cleared.json()["reason"] == "Fibre upgrade"
    assert missing.status_code == 404


async def test_an_update_preview_shows_each_languages_sms_and_subject_and_changes_nothing(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    _, outage_id = await setup(world, [customer(0), customer(1)])
    await drain(world)
    eta = datetime(2026, 12, 3, 16, 41, tzinfo=UTC)
    body = {
        "messages": {
            "en": "Roadworks damaged a fibre cable. Our technicians are repairing it right now",
            "es": "Unas obras han dañado la fibra óptica. Los técnicos la están reparando",
        },
        "fallback_language": "en",  # the German customer told of it reads the English
        "eta": eta.isoformat(),
        "state": "identified",
    }
    async with world["sessions"]() as session:
        before = await session.get(Outage, outage_id)
        assert before is not None
        before_state = (before.state, before.update_sequence, before.eta, before.next_update_due)
        outbox = len((await session.scalars(select(OutboxRow))).all())
        audited = len((await session.scalars(select(AuditEntry))).all())
    client: ClientFactory = world["client"]
    async with client(Role.ENGINEER) as api:
        answer = await api.post(
            f"/v1/outages/{outage_id}/updates/preview",
            json=body,
            params={"timezone": "Europe/Madrid"},
        )
        unknown = await api.post("/v1/outages/out_nope/updates/preview", json=body)
        bad_zone = await api.post(
            f"/v1/outages/{outage_id}/updates/preview", json=body, params={"timezone": "Mars/Base"}
        )
        bad_body = await api.post(
            f"/v1/outages/{outage_id}/updates/preview", json={"messages": {"de": "x"}}
        )

    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["max_sms_segments"] == 3 and preview["timezone"] == "Europe/Madrid"
    by_language = {item["language"]: item for item in preview["languages"]}
    assert set(by_language) == {"en", "de", "es", "vi", "hi"}
    spanish = by_language["es"]
    assert spanish["sms_encoding"] == "UCS-2" and 1 <= spanish["sms_segments"] <= 3
    assert body["messages"]["es"] in spanish["sms"] and "17:41" in spanish["sms"]  # Madrid time
    assert spanish["subject"] == "Novedades: incidencia en internet en su zona"
    english = by_language["en"]
    assert english["sms_encoding"] == "GSM-7" and body["messages"]["en"] in english["sms"]
    for item in preview["languages"]:
        assert sms_length(item["sms"]).segments == item["sms_segments"] <= 3
        assert sms_length(item["sms"]).encoding == item["sms_encoding"]
        assert item["subject"]
    assert unknown.status_code == 404
    assert bad_zone.status_code == 422 and bad_zone.json()["errors"][0]["field"] == "query.timezone"
    assert bad_body.status_code == 422

    # Nothing sent, nothing stored: the outage, its outbox and the gateway are as they were.
    sent = len(sms_gateway.messages)
    await drain(world)
    async with world["sessions"]() as session:
        after = await session.get(Outage, outage_id)
        assert after is not None
        assert (after.state, after.update_sequence, after.eta, after.next_update_due) == (
            before_state
        )
        assert len((await session.scalars(select(OutboxRow))).all()) == outbox
        updates = await session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "update"))
        assert updates.all() == []
        assert len((await session.scalars(select(AuditEntry))).all()) == audited
    assert len(sms_gateway.messages) == sent


async def test_an_api_without_a_renderer_says_it_cannot_preview(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = api_settings(database_url)
    app = create_app(settings=settings, sessions=sessions, registry=CollectorRegistry())
    headers = {"Authorization": f"Bearer {TOKENS[Role.ENGINEER]}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://forewarn", headers=headers
    ) as api:
        answer = await api.post(
            "/v1/outages/out_x/updates/preview", json={"messages": {"en": "Fibre cut"}}
        )
    assert answer.status_code == 501


async def test_an_english_customer_in_london_reads_british_dates_and_their_page_keeps_the_zone(
    world: dict[str, Any], sms_gateway: SmsGatewaySimulator
) -> None:
    world["clock"].now = datetime(2026, 3, 12, 14, 41, tzinfo=UTC)
    london = customer(1, timezone="Europe/London")  # English, no locale given: en_GB
    mexico = customer(2, timezone="America/Mexico_City", locale="es-MX")
    _, outage_id = await setup(world, [london, mexico])
    await drain(world)

    sms = {m.to: m.body for m in sms_gateway.messages}
    english, spanish = sms[london["phone"]], sms[mexico["phone"]]
    assert "12/03/2026, 14:41" in english, english  # was "3/12/26, 2:41 PM", read as 3 December
    assert "12/03/26, 8:41 a.m." in spanish, spanish
    link = english.split()[-1]
    assert link.endswith("?tz=Europe/London") and "c-1" not in link and "+49" not in link

    path = link.removeprefix("https://status.example.net")
    async with world["client"](None) as anonymous:
        from_notice = await anonymous.get(path + "&lang=en")
        plain = await anonymous.get(path.partition("?")[0], params={"lang": "en"})
        forged = await anonymous.get(path.partition("?")[0], params={"lang": "en", "tz": "../x"})
    assert from_notice.status_code == 200
    # From the notice: the customer's zone and place, as the SMS said; no script rewrites it.
    assert '<time datetime="2026-03-12T14:41:00Z">12 Mar 2026, 14:41:00</time>' in from_notice.text
    assert 'class="zone">Europe/London<' in from_notice.text and "<script" not in from_notice.text
    # Without a zone: UTC, and the browser's zone through a script of our own.
    for page in (plain, forged):
        assert '<time datetime="2026-03-12T14:41:00Z">Mar 12, 2026, 2:41:00' in page.text
        assert 'class="zone">UTC<' in page.text
        assert "<script>" in page.text and 'querySelectorAll("time[datetime]")' in page.text
        assert "src=" not in page.text  # no third-party code
