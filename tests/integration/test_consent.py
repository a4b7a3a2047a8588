"""A customer's opt-out is theirs: no inventory import undoes it, START gives it back, and the
planner honours it — on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.inventory.consent import Source, consent_history
from app.inventory.csv_import import import_inventory_dir
from app.inventory.service import import_inventory_file
from app.links import unsubscribe_token
from app.main import create_app
from app.notifications.models import OutboxRow
from app.notifications.planner import plan_notices
from app.outages.events import OutageEvent
from app.outages.lifecycle import OutageState
from app.settings import Role
from tests.factories import make_customer, make_inventory, open_outage_on_node_17
from tests.integration.api_client import TOKENS, api_settings
from tests.integration.consents import opt_outs
from tests.integration.test_provider_webhooks import AUTH_TOKEN, signed_post

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ANNA = make_customer(1, language="de")  # c-1, on SMS and e-mail
BEN = make_customer(2, language="en")  # c-2, the same
INVENTORY = make_inventory([ANNA, BEN])

Client = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def api(database_url: str, sessions: async_sessionmaker[AsyncSession]) -> Client:
    """An admin client on the app, which the SMS provider's signed callbacks also reach."""
    settings = api_settings(database_url, sms_gateway_token=SecretStr(f"AC0123:{AUTH_TOKEN}"))
    app = create_app(settings=settings, sessions=sessions, registry=CollectorRegistry())

    @asynccontextmanager
    async def client() -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://10.0.0.7:8000",
            headers={"Authorization": f"Bearer {TOKENS[Role.ADMIN]}"},
        ) as http:
            yield http

    return client


async def text_in(http: httpx.AsyncClient, customer: dict[str, Any], body: str) -> None:
    """The customer texts `body` to Forewarn's number, as the provider reports it."""
    reply = {"From": customer["phone"], "Body": body}
    response = await signed_post(http, "/v1/webhooks/sms/inbound", reply)
    assert response.status_code == 200, response.text


async def put_inventory(http: httpx.AsyncClient, inventory: dict[str, Any]) -> None:
    response = await http.put("/v1/inventory", json=inventory)
    assert response.status_code == 200, response.text


async def test_the_same_inventory_put_again_after_a_stop_keeps_the_customer_opted_out(
    api: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with api() as http:
        await put_inventory(http, INVENTORY)
        await text_in(http, ANNA, "STOPP")
        await put_inventory(http, INVENTORY)
        await put_inventory(http, INVENTORY)

    assert await opt_outs(sessions, "c-1") == ["sms"]
    assert await opt_outs(sessions, "c-2") == []


def _customers_csv(customers: list[dict[str, Any]]) -> str:
    lines = ["id,name,phone,email,language,timezone,channels,devices,opt_outs"]
    for c in customers:
        cells = [c["id"], c["name"], c["phone"], c["email"], c["language"], c["timezone"]]
        cells += [";".join(c["channels"]), ";".join(c["devices"]), ";".join(c.get("opt_outs", []))]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def write_csv_folder(path: Path, inventory: dict[str, Any]) -> Path:
    path.mkdir(exist_ok=True)
    nodes = ["id,level,parent"] + [
        f"{n['id']},{n['level']},{n.get('parent') or ''}" for n in inventory["nodes"]
    ]
    devices = ["id,node,services"] + [
        f"{d['id']},{d['node']},{';'.join(d['services'])}" for d in inventory["devices"]
    ]
    (path / "nodes.csv").write_text("\n".join(nodes) + "\n")
    (path / "devices.csv").write_text("\n".join(devices) + "\n")
    (path / "customers.csv").write_text(_customers_csv(inventory["customers"]))
    return path


async def test_a_csv_or_json_file_import_after_a_stop_keeps_the_customer_opted_out(
    api: Client, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    # `forewarn inventory import FILE|FOLDER` runs these two services.
    folder = write_csv_folder(tmp_path / "csv", INVENTORY)
    document = tmp_path / "inventory.json"
    document.write_text(json.dumps(INVENTORY))
    async with transaction(sessions) as session:
        await import_inventory_dir(session=session, path=folder)
    async with api() as http:
        await text_in(http, ANNA, "STOP")
    async with transaction(sessions) as session:
        await import_inventory_dir(session=session, path=folder)
    after_csv = await opt_outs(sessions, "c-1")
    async with transaction(sessions) as session:
        await import_inventory_file(session=session, path=document)

    assert after_csv == ["sms"]
    assert await opt_outs(sessions, "c-1") == ["sms"]


async def test_a_replacement_that_drops_a_customer_and_adds_them_back_keeps_their_stop(
    api: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with api() as http:
        await put_inventory(http, INVENTORY)
        await text_in(http, ANNA, "STOP")
        await put_inventory(http, make_inventory([BEN]))
        await put_inventory(http, INVENTORY)

    assert await opt_outs(sessions, "c-1") == ["sms"]


async def test_an_import_adds_the_operators_opt_out_and_can_take_back_only_its_own(
    api: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    listed = make_inventory([{**ANNA, "opt_outs": ["email"]}, BEN])
    async with api() as http:
        await put_inventory(http, INVENTORY)
        await text_in(http, ANNA, "STOP")
        await put_inventory(http, listed)
        both = await opt_outs(sessions, "c-1")
        await put_inventory(http, listed)  # the same listing again records nothing new
        await put_inventory(http, INVENTORY)  # the operator no longer lists e-mail
    async with sessions() as session:
        history = await consent_history(session=session, customer_id="c-1")

    assert both == ["email", "sms"]
    assert await opt_outs(sessions, "c-1") == ["sms"]
    assert [(c.channel, c.opted_out, c.source) for c in history] == [
        ("sms", True, Source.SMS_KEYWORD),
        ("email", True, Source.INVENTORY),
    ]


@pytest.mark.parametrize("word", ["START", "unstop", "Anmelden", "ALTA", "Bắt đầu", "शुरू"])
async def test_a_start_word_opts_back_in_and_the_next_outage_texts_them(
    api: Client, sessions: async_sessionmaker[AsyncSession], word: str
) -> None:
    async with api() as http:
        await put_inventory(http, INVENTORY)
        await text_in(http, ANNA, "STOP")
        stopped = await opt_outs(sessions, "c-1")
        await text_in(http, ANNA, word)
        started = await opt_outs(sessions, "c-1")

    event = await open_outage(sessions)
    assert stopped == ["sms"]
    assert started == []
    assert ("c-1", "detected", "sms") in await planned(sessions, event.outage_id)


async def test_start_does_not_opt_back_in_of_what_the_inventory_lists(
    api: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with api() as http:
        await put_inventory(http, make_inventory([{**ANNA, "opt_outs": ["sms"]}]))
        await text_in(http, ANNA, "START")

    assert await opt_outs(sessions, "c-1") == ["sms"]


async def open_outage(sessions: async_sessionmaker[AsyncSession]) -> OutageEvent:
    """Import INVENTORY again, open a TV outage on node-17 (neither SMS nor e-mail depends on
    TV) and plan its notices."""
    async with transaction(sessions) as session:
        event = await open_outage_on_node_17(
            session=session, inventory=INVENTORY, services=["tv"], at=T0
        )
        await plan_notices(session=session, event=event, now=T0)
    return event


async def planned(
    sessions: async_sessionmaker[AsyncSession], outage_id: str
) -> set[tuple[str, str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxRow.customer_id, OutboxRow.stage, OutboxRow.channel).where(
                OutboxRow.outage_id == outage_id
            )
        )
        return {(c, s, ch) for c, s, ch in rows}


async def test_the_planner_does_not_text_a_customer_who_stopped_after_a_reimport(
    api: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with api() as http:
        await put_inventory(http, INVENTORY)
        await text_in(http, ANNA, "STOPP")
        await put_inventory(http, INVENTORY)

    event = await open_outage(sessions)
    assert await planned(sessions, event.outage_id) == {
        ("c-1", "detected", "email"),
        ("c-2", "detected", "sms"),
        ("c-2", "detected", "email"),
    }


async def test_a_stop_after_the_first_notice_holds_for_the_updates_after_a_reimport(
    api: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    event = await open_outage(sessions)
    async with api() as http:
        await text_in(http, ANNA, "STOP")
        await put_inventory(http, INVENTORY)
    update = dataclasses.replace(
        event, previous_state=OutageState.OPEN, at=T0 + timedelta(minutes=30), update_sequence=1
    )
    async with transaction(sessions) as session:
        await plan_notices(session=session, event=update, now=T0 + timedelta(minutes=30))

    updates = {row for row in await planned(sessions, event.outage_id) if row[1] == "update"}
    assert updates == {
        ("c-1", "update", "email"),
        ("c-2", "update", "sms"),
        ("c-2", "update", "email"),
    }


async def test_a_choice_told_to_the_contact_centre_is_the_customers_own_and_outlives_imports(
    api: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    unsubscribe = f"/u/{unsubscribe_token('link-secret-for-tests', 'c-1', 'email')}"
    async with api() as http:
        await put_inventory(http, INVENTORY)
        assert (await http.post(unsubscribe)).status_code == 200
        resumed = await http.put("/v1/customers/c-1/consents/email", json={"opted_out": False})
        stopped = await http.put("/v1/customers/c-1/consents/sms", json={"opted_out": True})
        await put_inventory(http, INVENTORY)
        shown = await http.get("/v1/customers/c-1/consents")
        unknown = await http.put("/v1/customers/c-9/consents/sms", json={"opted_out": True})

    assert resumed.status_code == 200 and resumed.json()["opted_out"] == []
    assert stopped.status_code == 200 and stopped.json()["opted_out"] == ["sms"]
    assert shown.json()["opted_out"] == ["sms"] and shown.json()["listed_by_inventory"] == []
    assert [
        (r["channel"], r["opted_out"], r["source"], r["actor"]) for r in shown.json()["history"]
    ] == [
        ("email", True, "unsubscribe_link", None),
        ("email", False, "api", "admin"),
        ("sms", True, "api", "admin"),
    ]
    assert unknown.status_code == 404
    assert await opt_outs(sessions, "c-1") == ["sms"]
