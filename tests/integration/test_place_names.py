"""Names people know: the status page and the notices name the area as customers call it,
in their language, and the services in their words — never an internal id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.exceptions import InvalidInputError
from app.inventory.csv_import import parse_inventory_csv
from app.inventory.models import TopologyNode
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.notifications.planner import plan_notices
from app.outages.models import Outage
from forewarn.runtime import build_channels
from notifiers.dispatcher import Dispatcher
from notifiers.gateway_sim import SmsGatewaySimulator
from notifiers.render import Renderer
from notifiers.smtp_sink import SmtpSink
from tests.clock import FakeClock
from tests.factories import make_customer, make_inventory, open_outage_on_node_17
from tests.integration.api_client import api_settings, client_factory

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
RIVERSIDE = {"en": "Riverside", "de": "Flussufer", "es": "Ribera"}


def named(inventory: dict[str, Any], names: dict[str, str] | None) -> dict[str, Any]:
    for node in inventory["nodes"]:
        if node["id"] == "node-17" and names is not None:
            node["names"] = names
    return inventory


async def outage_page(
    database_url: str, sessions: async_sessionmaker[AsyncSession], names: dict[str, str] | None
) -> dict[str, str]:
    """Open an internet+TV+voice outage on node-17 (named `names`); its page in 3 languages."""
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session,
            inventory=named(make_inventory([make_customer(1)]), names),
            services=["internet", "tv", "voice"],
            at=T0,
        )
    async with sessions() as session:
        outage = await session.get(Outage, event.outage_id)
    assert outage is not None
    client = client_factory(api_settings(database_url), sessions)
    pages = {}
    async with client(None) as anonymous:
        for language in ("en", "de", "vi"):
            answer = await anonymous.get(f"/o/{outage.public_token}", params={"lang": language})
            assert answer.status_code == 200
            pages[language] = answer.text
    return pages


async def test_the_status_page_names_the_area_and_the_services_in_the_readers_language(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pages = await outage_page(database_url, sessions, RIVERSIDE)
    assert "<dd>Riverside</dd>" in pages["en"] and "<dd>Flussufer</dd>" in pages["de"]
    assert "<dd>Riverside</dd>" in pages["vi"]  # no Vietnamese name: the default language's
    assert "<dd>internet, TV, and phone line</dd>" in pages["en"]
    assert "<dd>Internet, TV und Telefon</dd>" in pages["de"]
    assert "điện thoại" in pages["vi"]
    for page in pages.values():
        assert "node-17" not in page and "voice" not in page


async def test_a_place_without_names_is_shown_readable_not_as_its_id(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pages = await outage_page(database_url, sessions, None)
    assert "<dd>Node 17</dd>" in pages["en"] and "node-17" not in pages["en"]


async def test_names_arrive_from_json_and_csv_and_are_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from_csv = parse_inventory_csv(
        {
            "nodes.csv": (
                b"id,level,parent,names\n"
                b"north,region,,\n"
                b"hub-1,hub,north,en=North Hub\n"
                b"node-17,node,hub-1,\n"
            ),
        }
    )
    hub = next(n for n in from_csv.nodes if n.id == "hub-1")
    assert hub.names == {"en": "North Hub"}
    doc = named(make_inventory([]), RIVERSIDE)
    async with transaction(sessions) as session:
        await replace_inventory(session=session, doc=InventoryIn.model_validate(doc))
    async with sessions() as session:
        node = await session.scalar(select(TopologyNode).where(TopologyNode.id == "node-17"))
    assert node is not None and node.names == RIVERSIDE

    with pytest.raises(InvalidInputError) as refused:
        parse_inventory_csv({"nodes.csv": b"id,level,names\nnorth,region,Riverside\n"})
    assert refused.value.errors[0]["field"] == "nodes.csv:row 2:names"
    with pytest.raises(ValueError):
        InventoryIn.model_validate(named(make_inventory([]), {"fr": "Rive"}))  # not a language


async def test_the_detected_e_mail_names_the_area_in_the_customers_language(
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpSink,
    sms_gateway: SmsGatewaySimulator,
) -> None:
    people = [make_customer(1, language="de"), make_customer(2, language="hi")]
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session,
            inventory=named(make_inventory(people), RIVERSIDE),
            services=["tv"],
            at=T0,
        )
        await plan_notices(session=session, event=event, now=T0)
    settings = api_settings(
        "sqlite+aiosqlite:///unused.db",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        sms_gateway_url=sms_gateway.url,
        sms_gateway_token=SecretStr(sms_gateway.credentials),
    )
    dispatcher = Dispatcher(
        sessions=sessions,
        channels=build_channels(settings),
        renderer=Renderer(),
        settings=settings,
        clock=FakeClock(T0 + timedelta(seconds=1)),
    )
    try:
        while await dispatcher.dispatch_once():
            pass
    finally:
        await dispatcher.aclose()
    texts = {
        str(m["To"]): m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for m in smtp_server.messages
    }
    assert "Betroffenes Gebiet: Flussufer." in texts[people[0]["email"]]
    assert "प्रभावित क्षेत्र: Riverside।" in texts[people[1]["email"]]
    assert not any("node-17" in text for text in texts.values())
