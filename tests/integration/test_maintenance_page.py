"""The maintenance page tells the truth in the reader's words: their language, the place's
name, their zone's time, and "completed" only when nothing there is failing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.inventory.schemas import InventoryIn
from app.inventory.service import replace_inventory
from app.maintenance.schemas import MaintenanceIn
from app.maintenance.service import create_maintenance
from tests.factories import make_customer, make_inventory, open_outage_on_node_17
from tests.integration.api_client import api_settings, client_factory

pytestmark = pytest.mark.integration

# Two hours ago, for an hour: the work has ended by the time the page is read.
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
END = START + timedelta(hours=1)


def inventory() -> dict[str, Any]:
    doc = make_inventory([make_customer(1)], services=("internet", "tv"))
    for node in doc["nodes"]:
        if node["id"] == "node-17":
            node["names"] = {"en": "Riverside", "de": "Flussufer"}
    return doc


async def window_on(sessions: async_sessionmaker[AsyncSession], scope: str) -> str:
    """Store the inventory and a finished window on `scope`; return its public token."""
    async with transaction(sessions) as session:
        await replace_inventory(session=session, doc=InventoryIn.model_validate(inventory()))
        window = await create_maintenance(
            session=session,
            window=MaintenanceIn(
                scope=scope, start=START, end=END, reason="Glasfaser-Ausbau", services=["tv"]
            ),
            actor="noc",
        )
        return window.public_token


async def page(
    database_url: str, sessions: async_sessionmaker[AsyncSession], token: str, **params: str
) -> httpx.Response:
    client = client_factory(api_settings(database_url), sessions)
    async with client(None) as http:
        return await http.get(f"/m/{token}", params=params)


async def test_the_maintenance_page_speaks_the_readers_language_place_and_zone(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await window_on(sessions, "node-17")
    answer = await page(database_url, sessions, token, lang="de", tz="Europe/Berlin")
    assert answer.status_code == 200
    text = answer.text
    assert "Geplante Wartungsarbeiten" in text and "Abgeschlossen" in text
    assert "Flussufer" in text and "node-17" not in text
    assert "Planned maintenance" not in text and "Completed" not in text
    local = END.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M")
    assert local in text and "Europe/Berlin" in text  # the zone the notice link named
    assert 'datetime="' in text


async def test_the_maintenance_page_does_not_say_completed_while_an_outage_is_open_there(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await window_on(sessions, "node-17")
    async with transaction(sessions) as session:
        await open_outage_on_node_17(
            session=session, inventory=inventory(), services=["internet"], at=END
        )
    english = (await page(database_url, sessions, token, lang="en")).text
    assert "Completed" not in english
    assert "Work finished; we are fixing a disruption in this area" in english


async def test_a_hubs_maintenance_page_sees_an_outage_on_one_of_its_nodes(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await window_on(sessions, "hub-1")
    assert "Completed" in (await page(database_url, sessions, token, lang="en")).text
    async with transaction(sessions) as session:
        await open_outage_on_node_17(
            session=session, inventory=inventory(), services=["internet"], at=END
        )
    assert "Completed" not in (await page(database_url, sessions, token, lang="en")).text
