"""The audit log: every change through the API leaves an entry naming the token that made it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import record
from app.db import transaction
from app.rules.apply import apply_rules, parse_rules_file
from app.settings import Role
from tests.clock import FakeClock
from tests.integration.api_client import ClientFactory, api_settings, client_factory
from tests.integration.test_api import INVENTORY, RULES, _open_outage

pytestmark = pytest.mark.integration

PERSONAL = re.compile(r"@|\+?\d{9,}")


@pytest.fixture
def client(database_url: str, sessions: async_sessionmaker[AsyncSession]) -> ClientFactory:
    return client_factory(api_settings(database_url), sessions)


async def audit(client: ClientFactory, **filters: Any) -> list[dict[str, Any]]:
    async with client(Role.ENGINEER) as api:
        response = await api.get("/v1/audit", params=filters)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


async def test_rule_changes_are_audited_with_definition_state_and_version(
    client: ClientFactory,
) -> None:
    async with client(Role.ENGINEER) as api:
        rule_id = (await api.post("/v1/rules", json=RULES[4])).json()["id"]
        await api.put(f"/v1/rules/{rule_id}", json={**RULES[4], "threshold": 0.5})
        await api.put(f"/v1/rules/{rule_id}", json={**RULES[4], "threshold": 0.5})  # no change
        await api.patch(f"/v1/rules/{rule_id}", json={"enabled": False})
        await api.delete(f"/v1/rules/{rule_id}")

    entries = await audit(client, entity="rule", entity_id=str(rule_id))
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("delete", "engineer"),
        ("disable", "engineer"),
        ("update", "engineer"),
        ("create", "engineer"),
    ]
    delete, disable, update, create = entries
    assert create["before"] is None
    assert create["after"]["version"] == 1 and create["after"]["enabled"] is True
    assert create["after"]["definition"]["threshold"] == 0.3
    assert update["before"]["definition"]["threshold"] == 0.3
    assert (update["after"]["definition"]["threshold"], update["after"]["version"]) == (0.5, 2)
    assert (disable["before"]["enabled"], disable["after"]["enabled"]) == (True, False)
    assert delete["before"]["version"] == 3 and delete["after"] is None


async def test_applying_rules_from_a_file_is_audited_under_the_given_actor(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    rules = parse_rules_file(orjson.dumps(RULES[:2]), ".json")
    async with transaction(sessions) as session:
        await apply_rules(session=session, rules=rules, actor="cli:ops")
        await apply_rules(session=session, rules=rules, actor="cli:ops")  # unchanged: no entry

    entries = await audit(client, actor="cli:ops")
    assert sorted(e["after"]["definition"]["name"] for e in entries) == sorted(
        r["name"] for r in RULES[:2]
    )
    assert {(e["action"], e["entity"]) for e in entries} == {("apply", "rule")}


async def test_noc_actions_on_an_outage_are_audited_with_state_cause_and_eta(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with client() as api:
        await api.put("/v1/inventory", json=INVENTORY)
        rule_id = (await api.post("/v1/rules", json=RULES[4])).json()["id"]
    outage_id = await _open_outage(sessions, rule_id)
    eta = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    update = {
        "messages": {"en": "A fibre was cut; call +49 151 12345678 or write noc@example.net"},
        "cause": "fibre cut, reported by anna@example.com on +4915112345678",
        "eta": eta.isoformat(),
    }
    async with client(Role.ENGINEER) as api:
        assert (await api.post(f"/v1/outages/{outage_id}/acknowledge")).status_code == 200
        assert (await api.post(f"/v1/outages/{outage_id}/updates", json=update)).status_code == 201
        assert (await api.post(f"/v1/outages/{outage_id}/resolve", json={})).status_code == 200

    entries = await audit(client, entity="outage", entity_id=outage_id)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("resolve", "engineer"),
        ("update", "engineer"),
        ("acknowledge", "engineer"),
    ]
    resolved, updated, acknowledged = entries
    assert acknowledged["before"] == {"state": "open", "cause": None, "eta": None}
    assert updated["after"]["state"] == "identified"
    assert updated["after"]["cause"] == "fibre cut, reported by [e-mail] on [phone]"
    assert datetime.fromisoformat(updated["after"]["eta"]) == eta
    assert (resolved["before"]["state"], resolved["after"]["state"]) == ("identified", "resolved")


async def test_an_inventory_replacement_is_audited_as_counts_only(client: ClientFactory) -> None:
    async with client() as api:
        await api.put("/v1/inventory", json=INVENTORY)

    [entry] = await audit(client, entity="inventory")
    assert entry["actor"] == "admin" and entry["action"] == "replace"
    assert entry["before"] == {"nodes": 0, "devices": 0, "customers": 0}
    assert entry["after"] == {"nodes": 3, "devices": 1, "customers": 1}


async def test_maintenance_windows_are_audited_when_scheduled_and_cancelled(
    client: ClientFactory,
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    window = {
        "scope": "hub-1",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
        "reason": "OLT firmware upgrade; questions to noc@example.net",
    }
    async with client() as api:
        await api.put("/v1/inventory", json=INVENTORY)
    async with client(Role.ENGINEER) as api:
        window_id = (await api.post("/v1/maintenance", json=window)).json()["id"]
        await api.delete(f"/v1/maintenance/{window_id}")

    cancelled, created = await audit(client, entity="maintenance")
    assert (created["action"], created["actor"], created["before"]) == ("create", "engineer", None)
    assert created["after"]["scope"] == "hub-1"
    assert created["after"]["reason"] == "OLT firmware upgrade; questions to [e-mail]"
    assert datetime.fromisoformat(created["after"]["start"]) == start
    assert cancelled["action"] == "cancel" and cancelled["entity_id"] == str(window_id)
    assert cancelled["before"]["end"] == created["after"]["end"]
    assert datetime.fromisoformat(cancelled["after"]["end"]) == start  # it never started


async def test_token_changes_are_audited_with_name_and_role_only(client: ClientFactory) -> None:
    async with client() as api:
        token = (await api.post("/v1/tokens", json={"name": "bot", "role": "viewer"})).json()
        await api.delete("/v1/tokens/bot")

    revoked, created = await audit(client, entity="token", entity_id="bot")
    assert (created["action"], created["actor"]) == ("create", "admin")
    assert created["after"] == {"name": "bot", "role": "viewer"}
    assert (revoked["action"], revoked["before"], revoked["after"]) == (
        "revoke",
        {"name": "bot", "role": "viewer"},
        None,
    )
    async with client() as api:
        everything = (await api.get("/v1/audit", params={"limit": 1000})).text
    assert token["token"] not in everything


async def test_the_log_is_filtered_newest_first_and_needs_an_engineer(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    at = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    clock = FakeClock(at)
    async with transaction(sessions) as session:
        for minute, (actor, entity, entity_id) in enumerate(
            [("a", "rule", "1"), ("b", "rule", "2"), ("a", "outage", "x"), ("a", "rule", "1")]
        ):
            clock.now = at + timedelta(minutes=minute)
            await record(
                session=session,
                actor=actor,
                action="update",
                entity=entity,
                entity_id=entity_id,
                before=None,
                after={"n": minute},
                clock=clock,
            )

    def numbers(entries: list[dict[str, Any]]) -> list[int]:
        return [e["after"]["n"] for e in entries]

    assert numbers(await audit(client)) == [3, 2, 1, 0]
    assert numbers(await audit(client, entity="rule")) == [3, 1, 0]
    assert numbers(await audit(client, entity="rule", entity_id="1")) == [3, 0]
    assert numbers(await audit(client, actor="a")) == [3, 2, 0]
    assert numbers(await audit(client, limit=2)) == [3, 2]
    async with client(Role.VIEWER) as viewer:
        assert (await viewer.get("/v1/audit")).status_code == 403
    async with client(Role.ENGINEER) as api:
        too_many = await api.get("/v1/audit", params={"limit": 1001})
        unknown = await api.get("/v1/audit", params={"entity": "customer"})
    assert too_many.status_code == 422 and unknown.status_code == 422


async def test_no_phone_number_or_address_reaches_the_log(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with client() as api:
        await api.put("/v1/inventory", json=INVENTORY)
    async with transaction(sessions) as session:
        await record(
            session=session,
            actor="ops",
            action="update",
            entity="outage",
            entity_id="x",
            before={"note": ["call +44 20 7946 0958", {"mail": "chloe@example.co.uk"}]},
            after={"note": "call 015112345678"},
        )
    async with client() as api:
        text = (await api.get("/v1/audit")).text
    assert not PERSONAL.search(text), text
    assert "[phone]" in text and "[e-mail]" in text
