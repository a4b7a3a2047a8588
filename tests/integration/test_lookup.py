"""Customer lookups for the IVR and the contact centre, against a real database and broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.main import create_app
from app.outages.lifecycle import OutageState, Transition
from app.rules.schemas import RatioDownRule
from app.rules.service import create_rule
from app.settings import Role
from consumers.contact_sink import KafkaContactSink
from tests.factories import apply_transition, make_rule
from tests.fixtures.kafka import TopicFactory
from tests.integration.api_client import TOKENS, ClientFactory, api_settings, client_factory

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

INVENTORY: dict[str, Any] = {
    "nodes": [
        {"id": "north", "level": "region"},
        {"id": "hub-1", "level": "hub", "parent": "north"},
        {"id": "node-17", "level": "node", "parent": "hub-1"},
        {"id": "node-18", "level": "node", "parent": "hub-1"},
        {"id": "south", "level": "region"},
        {"id": "hub-2", "level": "hub", "parent": "south"},
        {"id": "node-20", "level": "node", "parent": "hub-2"},
    ],
    "devices": [
        {"id": "cpe-1", "node": "node-17", "services": ["internet", "tv"]},
        {"id": "cpe-2", "node": "node-20", "services": ["voice"]},
        {"id": "cpe-3", "node": "node-18", "services": ["tv"]},
    ],
    "customers": [
        {
            "id": f"c-{i}",
            "name": f"Customer {i}",
            "phone": f"+4915112345{677 + i}",
            "channels": ["sms"],
            "devices": [f"cpe-{i}"],
        }
        for i in (1, 2, 3)
    ],
}
CUSTOMER_IDS = ("c-1", "c-2", "c-3")


def _rule(name: str) -> RatioDownRule:
    return RatioDownRule.model_validate(make_rule(name=name))


async def _move(
    session: AsyncSession,
    rule_id: int,
    scope: tuple[str, str],
    services: tuple[str, ...],
    state: OutageState,
    minutes: int,
) -> str:
    at = T0 + timedelta(minutes=minutes)
    event = await apply_transition(
        session=session,
        transition=Transition(
            rule_id=rule_id,
            rule_version=1,
            rule_name="modems-down",
            scope_level=scope[0],
            scope_id=scope[1],
            to_state=state,
            at=at,
            started_at=at,
            severity="major",
            services=services,
        ),
        next_update_interval=timedelta(minutes=30),
        clock=lambda: at,
    )
    assert event is not None
    return event.outage_id


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """Outages of every kind of scope; return their ids by a name saying whom they hit."""
    async with transaction(sessions) as session:
        await replace_inventory(session=session, doc=InventoryIn.model_validate(INVENTORY))
        rule = (await create_rule(session=session, rule=_rule("modems-down"))).id
        other = (await create_rule(session=session, rule=_rule("modems-down-2"))).id
        ids = {
            "node_internet": await _move(
                session, rule, ("node", "node-17"), ("internet",), OutageState.OPEN, 1
            ),
            "hub_tv": await _move(session, rule, ("hub", "hub-1"), ("tv",), OutageState.OPEN, 2),
            "hub_voice": await _move(
                session, other, ("hub", "hub-1"), ("voice",), OutageState.OPEN, 3
            ),
            "region_all": await _move(session, rule, ("region", "south"), (), OutageState.OPEN, 4),
            "device_voice": await _move(
                session, rule, ("device", "cpe-2"), ("voice",), OutageState.OPEN, 5
            ),
            "suspected": await _move(
                session, rule, ("node", "node-18"), ("tv",), OutageState.SUSPECTED, 6
            ),
            "resolved": await _move(
                session, other, ("node", "node-17"), ("tv",), OutageState.OPEN, 7
            ),
        }
        await _move(session, other, ("node", "node-17"), ("tv",), OutageState.RESOLVED, 8)
    return ids


@pytest.fixture
async def client(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[ClientFactory]:
    yield client_factory(api_settings(database_url), sessions)


async def test_a_customer_is_affected_by_told_outages_over_their_devices_and_services(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await seed(sessions)
    async with client(Role.VIEWER) as api:
        answers = {c: (await api.get(f"/v1/customers/{c}/outages")).json() for c in CUSTOMER_IDS}

    assert {c: [o["id"] for o in a["outages"]] for c, a in answers.items()} == {
        "c-1": [ids["hub_tv"], ids["node_internet"]],  # newest first; not hub voice, not resolved
        "c-2": [ids["device_voice"], ids["region_all"]],  # no services listed: every service
        "c-3": [ids["hub_tv"]],  # the node-18 outage is only suspected: nobody was told
    }
    assert all(a["affected"] for a in answers.values())
    first = answers["c-1"]["outages"][1]
    assert first["state"] == "open" and first["services"] == ["internet"]
    assert first["status_url"].startswith("https://status.example.net/o/")
    assert set(first) == {
        "id",
        "state",
        "services",
        "started_at",
        "opened_at",
        "eta",
        "next_update_due",
        "cause",
        "status_url",
    }


async def test_a_customer_whose_services_are_not_hit_is_not_affected(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with transaction(sessions) as session:
        await replace_inventory(session=session, doc=InventoryIn.model_validate(INVENTORY))
        rule = (await create_rule(session=session, rule=_rule("modems-down"))).id
        await _move(session, rule, ("hub", "hub-1"), ("voice",), OutageState.OPEN, 1)
    async with client(Role.VIEWER) as api:
        answer = (await api.get("/v1/customers/c-1/outages")).json()
    assert answer == {"customer_id": "c-1", "affected": False, "outages": []}


async def test_a_lookup_by_phone_accepts_spaced_international_formatting(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await seed(sessions)
    async with client(Role.VIEWER) as api:
        response = await api.get("/v1/lookup", params={"phone": "+49 151 12345678"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == "c-1" and body["affected"] is True
    assert [o["id"] for o in body["outages"]] == [ids["hub_tv"], ids["node_internet"]]


async def test_unknown_customers_and_phones_get_404_and_a_bad_phone_422(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    async with client(Role.VIEWER) as api:
        no_customer = await api.get("/v1/customers/c-404/outages")
        no_phone = await api.get("/v1/lookup", params={"phone": "+4915199999999"})
        bad_phone = await api.get("/v1/lookup", params={"phone": "12345"})
        missing = await api.get("/v1/lookup")

    assert no_customer.status_code == 404
    assert no_phone.status_code == 404
    assert no_phone.json()["detail"] == "no customer with this phone number"
    assert bad_phone.status_code == 422
    assert [e["field"] for e in bad_phone.json()["errors"]] == ["query.phone"]
    assert missing.status_code == 422


async def test_a_viewer_token_suffices_and_no_token_gets_401(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    async with client(Role.VIEWER) as viewer:
        allowed = await viewer.get("/v1/lookup", params={"phone": "+4915112345678"})
    async with client(None) as anonymous:
        refused = await anonymous.get("/v1/lookup", params={"phone": "+4915112345678"})
        refused_id = await anonymous.get("/v1/customers/c-1/outages")

    assert allowed.status_code == 200
    assert refused.status_code == 401 and refused_id.status_code == 401


async def test_each_answered_lookup_is_published_to_the_contacts_topic(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    kafka_bootstrap: str,
    topic_prefix: str,
    topic_factory: TopicFactory,
) -> None:
    await topic_factory([f"{topic_prefix}contacts"], 1)
    await seed(sessions)
    settings = api_settings(
        database_url, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix
    )
    sink = KafkaContactSink(settings)
    app = create_app(
        settings=settings, sessions=sessions, registry=CollectorRegistry(), contact_sink=sink
    )
    before = int(datetime.now(UTC).timestamp() * 1000)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://forewarn",
            headers={"Authorization": f"Bearer {TOKENS[Role.VIEWER]}"},
        ) as api:
            by_phone = await api.get("/v1/lookup", params={"phone": "+4915112345679"})
            by_id = await api.get("/v1/customers/c-3/outages")
            unknown = await api.get("/v1/customers/c-404/outages")
    finally:
        await sink.aclose()
    assert (by_phone.status_code, by_id.status_code, unknown.status_code) == (200, 200, 404)

    contacts = await _consume(kafka_bootstrap, f"{topic_prefix}contacts", 2)
    assert [(c["customer_id"], c["channel"]) for c in contacts] == [
        ("c-2", "lookup"),
        ("c-3", "lookup"),
    ]
    assert all(before <= c["ts"] <= before + 60_000 for c in contacts)


async def _consume(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(15):
            while len(found) < count:
                batch = await consumer.getmany(timeout_ms=1000)
                found += [orjson.loads(r.value or b"{}") for rs in batch.values() for r in rs]
        # Nothing more arrives: the 404 was not a contact.
        found += [
            orjson.loads(r.value or b"{}")
            for rs in (await consumer.getmany(timeout_ms=500)).values()
            for r in rs
        ]
    finally:
        await consumer.stop()
    return found
