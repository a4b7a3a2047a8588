"""The REST API against a real database: inventory, rules, outages, access, public pages."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction
from app.inventory.models import Customer
from app.links import unsubscribe_token
from app.outages.lifecycle import OutageState, Transition
from app.rules.service import enabled_rule_specs
from app.settings import Role
from tests.factories import apply_transition, make_rule, node_rule
from tests.integration.api_client import ClientFactory, api_settings, client_factory
from tests.integration.consents import opt_outs

pytestmark = pytest.mark.integration

INVENTORY: dict[str, Any] = {
    "nodes": [
        {"id": "north", "level": "region"},
        {"id": "hub-1", "level": "hub", "parent": "north"},
        {"id": "node-17", "level": "node", "parent": "hub-1"},
    ],
    "devices": [{"id": "cpe-0001", "node": "node-17", "services": ["internet", "tv"]}],
    "customers": [
        {
            "id": "c-1",
            "name": "Anna Weber",
            "phone": "+4915112345678",
            "email": "anna@example.com",
            "language": "de",
            "timezone": "Europe/Berlin",
            "channels": ["sms", "email"],
            "devices": ["cpe-0001"],
        }
    ],
}

RULES = [
    make_rule("alarm"),
    make_rule("absence"),
    make_rule("threshold"),
    make_rule("contacts_spike"),
    node_rule(),
]


@pytest.fixture
async def client(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[ClientFactory]:
    yield client_factory(api_settings(database_url), sessions)


async def test_the_documented_inventory_is_accepted_as_it_is(client: ClientFactory) -> None:
    async with client() as api:
        response = await api.put("/v1/inventory", json=INVENTORY)
        summary = await api.get("/v1/inventory/summary")

    assert response.status_code == 200, response.text
    assert response.json() == {"nodes": 3, "devices": 1, "customers": 1}
    assert summary.json() == {"nodes": 3, "devices": 1, "customers": 1}


async def test_a_customers_locale_is_checked_normalised_and_stored(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    def with_locale(locale: str) -> dict[str, Any]:
        doc = copy.deepcopy(INVENTORY)
        doc["customers"][0].update(language="en", timezone="Europe/Berlin", locale=locale)
        return doc

    async with client() as api:
        stored = await api.put("/v1/inventory", json=with_locale("en_gb"))
        unknown = await api.put("/v1/inventory", json=with_locale("xx-YY"))
        other_language = await api.put("/v1/inventory", json=with_locale("de-AT"))
    async with sessions() as session:
        customer = await session.get(Customer, "c-1")

    assert stored.status_code == 200, stored.text
    assert customer is not None and customer.locale == "en-GB"
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "customers[0].locale"
    assert other_language.status_code == 422
    assert "not in the language en" in other_language.json()["errors"][0]["reason"]


async def test_inventory_errors_name_every_bad_field_at_once(client: ClientFactory) -> None:
    bad = copy.deepcopy(INVENTORY)
    bad["customers"][0].update(phone="12345", email="not-an-address", timezone="Mars/Olympus")
    bad["customers"][0]["language"] = "xx"
    async with client() as api:
        response = await api.put("/v1/inventory", json=bad)

    assert response.status_code == 422
    fields = {e["field"]: e["reason"] for e in response.json()["errors"]}
    assert set(fields) == {
        "customers[0].phone",
        "customers[0].email",
        "customers[0].timezone",
        "customers[0].language",
    }
    assert "E.164" in fields["customers[0].phone"]


async def test_inventory_references_are_checked_and_nothing_is_stored(
    client: ClientFactory,
) -> None:
    bad = copy.deepcopy(INVENTORY)
    bad["nodes"][2]["parent"] = "north"  # a node must hang under a hub
    bad["devices"][0]["node"] = "node-99"
    bad["customers"][0]["devices"] = ["cpe-0404"]
    bad["customers"][0]["channels"] = ["sms", "webhook"]
    async with client() as api:
        response = await api.put("/v1/inventory", json=bad)
        summary = await api.get("/v1/inventory/summary")

    assert response.status_code == 422
    errors = {e["field"]: e["reason"] for e in response.json()["errors"]}
    assert errors == {
        "nodes[2].parent": "'north' is not a hub (it is a region)",
        "devices[0].node": "'node-99' is not a node",
        "customers[0].devices[0]": "unknown device 'cpe-0404'",
        "customers[0].channels[1]": "channel webhook needs a webhook_url",
    }
    assert summary.json() == {"nodes": 0, "devices": 0, "customers": 0}


async def test_phone_numbers_are_stored_in_e164(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    doc = copy.deepcopy(INVENTORY)
    doc["customers"][0]["phone"] = "+49 151 1234-5678"
    async with client() as api:
        assert (await api.put("/v1/inventory", json=doc)).status_code == 200
    async with sessions() as session:
        customer = await session.get(Customer, "c-1")
    assert customer is not None and customer.phone == "+4915112345678"


async def test_a_second_put_replaces_the_inventory(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    smaller = copy.deepcopy(INVENTORY)
    smaller["customers"] = []
    smaller["devices"] = []
    async with client() as api:
        await api.put("/v1/inventory", json=INVENTORY)
        second = await api.put("/v1/inventory", json=smaller)
    assert second.json() == {"nodes": 3, "devices": 0, "customers": 0}
    async with sessions() as session:
        assert list(await session.scalars(select(Customer.id))) == []


@pytest.mark.parametrize("rule", RULES, ids=[r["name"] for r in RULES])
async def test_each_documented_rule_is_accepted_as_it_is(
    client: ClientFactory, rule: dict[str, Any]
) -> None:
    async with client(Role.ENGINEER) as api:
        response = await api.post("/v1/rules", json=rule)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["kind"], body["version"]) == (rule["name"], rule["kind"], 1)
    assert response.headers["Location"] == f"/v1/rules/{body['id']}"


async def test_a_rule_name_is_taken_only_once(client: ClientFactory) -> None:
    async with client() as api:
        assert (await api.post("/v1/rules", json=RULES[0])).status_code == 201
        again = await api.post("/v1/rules", json=RULES[0])
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


async def test_a_bad_rule_gets_422_naming_the_field(client: ClientFactory) -> None:
    rule = {**RULES[4], "threshold": 1.5, "for": "soon"}
    async with client() as api:
        response = await api.post("/v1/rules", json=rule)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"ratio_down.threshold", "ratio_down.for"}


async def test_changing_a_rule_makes_a_new_version_and_keeps_the_old(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with client() as api:
        rule_id = (await api.post("/v1/rules", json=RULES[4])).json()["id"]
        changed = await api.put(f"/v1/rules/{rule_id}", json={**RULES[4], "threshold": 0.5})
        unchanged = await api.put(f"/v1/rules/{rule_id}", json={**RULES[4], "threshold": 0.5})
        disabled = await api.patch(f"/v1/rules/{rule_id}", json={"enabled": False})
        versions = (await api.get(f"/v1/rules/{rule_id}/versions")).json()

    assert changed.json()["version"] == 2
    assert unchanged.json()["version"] == 2
    assert disabled.json()["version"] == 3 and disabled.json()["enabled"] is False
    assert [(v["version"], v["definition"]["threshold"], v["enabled"]) for v in versions] == [
        (1, 0.3, True),
        (2, 0.5, True),
        (3, 0.5, False),
    ]
    async with sessions() as session:
        assert await enabled_rule_specs(session=session) == []


async def test_validate_checks_without_storing(client: ClientFactory) -> None:
    async with client() as api:
        checked = await api.post("/v1/rules/validate", json=RULES[1])
        stored = await api.get("/v1/rules")
    assert checked.status_code == 200
    assert checked.json()["definition"]["for"] == "0s"
    assert stored.json() == []


async def test_a_rule_with_outages_cannot_be_deleted_only_disabled(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    async with client() as api:
        keep_id = (await api.post("/v1/rules", json=RULES[4])).json()["id"]
        drop_id = (await api.post("/v1/rules", json=RULES[0])).json()["id"]
        await _open_outage(sessions, keep_id)
        refused = await api.delete(f"/v1/rules/{keep_id}")
        deleted = await api.delete(f"/v1/rules/{drop_id}")
        missing = await api.get(f"/v1/rules/{drop_id}")
    assert refused.status_code == 409 and "disable it instead" in refused.json()["detail"]
    assert deleted.status_code == 204
    assert missing.status_code == 404


async def _open_outage(sessions: async_sessionmaker[AsyncSession], rule_id: int) -> str:
    at = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    transition = Transition(
        rule_id=rule_id,
        rule_version=1,
        rule_name="modems-down-on-node",
        scope_level="node",
        scope_id="node-17",
        to_state=OutageState.OPEN,
        at=at,
        started_at=at - timedelta(seconds=30),
        severity="major",
        services=("internet",),
        details={"down": 12, "devices": 20},
    )
    async with transaction(sessions) as session:
        event = await apply_transition(
            session=session, transition=transition, next_update_interval=timedelta(minutes=30)
        )
    assert event is not None
    return event.outage_id


async def test_outages_are_listed_by_state_and_shown_with_their_timeline(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with client() as api:
        rule_id = (await api.post("/v1/rules", json=RULES[4])).json()["id"]
    outage_id = await _open_outage(sessions, rule_id)
    async with client(Role.VIEWER) as api:
        open_ = (await api.get("/v1/outages", params={"state": "open"})).json()
        resolved = (await api.get("/v1/outages", params={"state": "resolved"})).json()
        detail = (await api.get(f"/v1/outages/{outage_id}")).json()
        missing = await api.get("/v1/outages/nope")
        page = await api.get("/v1/outages", params={"state": "opened"})

    assert [o["id"] for o in open_["items"]] == [outage_id]
    assert resolved["items"] == []
    assert detail["scope_id"] == "node-17" and detail["next_update_due"] is not None
    assert detail["status_url"].startswith("https://status.example.net/o/")
    assert [t["state"] for t in detail["timeline"]] == ["open"]
    assert missing.status_code == 404
    assert page.status_code == 422 and page.json()["errors"][0]["field"] == "query.state[0]"


async def test_the_public_status_page_needs_no_token_and_escapes_what_it_shows(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with client() as api:
        rule_id = (await api.post("/v1/rules", json=RULES[4])).json()["id"]
        outage_id = await _open_outage(sessions, rule_id)
        url = (await api.get(f"/v1/outages/{outage_id}")).json()["status_url"]
    async with client(None) as anonymous:
        page = await anonymous.get(url.removeprefix("https://status.example.net"))
        unknown = await anonymous.get("/o/not-a-token")
    assert page.status_code == 200
    assert "Node 17" in page.text and "internet" in page.text  # the area named, not its id
    assert "node-17" not in page.text
    assert unknown.status_code == 404


async def test_one_click_unsubscribe_opts_out_only_on_post_and_rejects_forged_links(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = unsubscribe_token("link-secret-for-tests", "c-1", "email")
    forged = unsubscribe_token("another-secret", "c-1", "email")
    async with client() as api:
        await api.put("/v1/inventory", json=INVENTORY)
    async with client(None) as anonymous:
        asked = await anonymous.get(f"/u/{token}")
        before = await opt_outs(sessions)
        done = await anonymous.post(f"/u/{token}")
        rejected = await anonymous.post(f"/u/{forged}")
    after = await opt_outs(sessions)
    assert asked.status_code == 200 and before == []
    assert done.status_code == 200 and after == ["email"]
    assert rejected.status_code == 404


ROUTES: list[tuple[str, str, Role]] = [
    ("PUT", "/v1/inventory", Role.ADMIN),
    ("GET", "/v1/inventory/summary", Role.VIEWER),
    ("POST", "/v1/rules", Role.ENGINEER),
    ("POST", "/v1/rules/validate", Role.ENGINEER),
    ("GET", "/v1/rules", Role.VIEWER),
    ("GET", "/v1/rules/1", Role.VIEWER),
    ("GET", "/v1/rules/1/versions", Role.VIEWER),
    ("PUT", "/v1/rules/1", Role.ENGINEER),
    ("PATCH", "/v1/rules/1", Role.ENGINEER),
    ("DELETE", "/v1/rules/1", Role.ENGINEER),
    ("POST", "/v1/rules/1/backtest", Role.ENGINEER),
    ("GET", "/v1/outages", Role.VIEWER),
    ("GET", "/v1/outages/x", Role.VIEWER),
    ("POST", "/v1/outages/x/acknowledge", Role.ENGINEER),
    ("POST", "/v1/outages/x/updates", Role.ENGINEER),
    ("POST", "/v1/outages/x/updates/preview", Role.ENGINEER),
    ("POST", "/v1/outages/x/resolve", Role.ENGINEER),
    ("POST", "/v1/maintenance", Role.ENGINEER),
    ("GET", "/v1/maintenance", Role.VIEWER),
    ("PATCH", "/v1/maintenance/1", Role.ENGINEER),
    ("DELETE", "/v1/maintenance/1", Role.ENGINEER),
    ("GET", "/v1/customers/x/outages", Role.VIEWER),
    ("GET", "/v1/customers/x/consents", Role.VIEWER),
    ("PUT", "/v1/customers/x/consents/email", Role.ENGINEER),
    ("GET", "/v1/lookup", Role.VIEWER),
    ("GET", "/v1/tokens", Role.ADMIN),
    ("POST", "/v1/tokens", Role.ADMIN),
    ("DELETE", "/v1/tokens/x", Role.ADMIN),
    ("GET", "/v1/audit", Role.ENGINEER),
]


async def test_every_protected_route_wants_a_token_and_a_high_enough_role(
    client: ClientFactory,
) -> None:
    app_routes = await _protected_routes(client)
    assert app_routes == {(m, p) for m, p, _ in ROUTES}, "ROUTES must list every /v1 route"
    for method, path, needed in ROUTES:
        async with client(None) as anonymous:
            response = await anonymous.request(method, path)
            assert response.status_code == 401, (method, path)
            assert response.headers["WWW-Authenticate"] == "Bearer"
        async with client(None) as forged:
            forged.headers["Authorization"] = "Bearer not-a-known-token-at-all"
            assert (await forged.request(method, path)).status_code == 401, (method, path)
        for role in Role:
            if role.rank < needed.rank:
                async with client(role) as low:
                    assert (await low.request(method, path)).status_code == 403, (method, path)


async def _protected_routes(client: ClientFactory) -> set[tuple[str, str]]:
    async with client() as api:
        spec = (await api.get("/openapi.json")).json()
    found = set()
    for path, operations in spec["paths"].items():
        # Provider webhooks are authenticated by their signature, not by a bearer token.
        if not path.startswith("/v1/") or path.startswith("/v1/webhooks/"):
            continue
        for method in operations:
            concrete = path.replace("{rule_id}", "1").replace("{window_id}", "1")
            concrete = concrete.replace("{outage_id}", "x").replace("{customer_id}", "x")
            concrete = concrete.replace("{name}", "x").replace("{channel}", "email")
            found.add((method.upper(), concrete))
    return found


async def test_health_readiness_and_metrics(client: ClientFactory) -> None:
    async with client(None) as anonymous:
        health = await anonymous.get("/healthz")
        ready = await anonymous.get("/readyz")
        metrics = await anonymous.get("/metrics")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == {"ok": True}
    assert metrics.headers["content-type"].startswith("text/plain")


async def test_readiness_names_the_failing_check(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    settings = api_settings(database_url, kafka_bootstrap_servers="127.0.0.1:1")
    async with client_factory(settings, sessions)(None) as anonymous:
        ready = await anonymous.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["broker"]


async def test_maintenance_windows_are_scheduled_listed_and_cancelled(
    client: ClientFactory,
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    window = {
        "scope": "hub-1",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
        "reason": "OLT firmware upgrade",
    }
    async with client() as api:
        await api.put("/v1/inventory", json=INVENTORY)
        created = await api.post("/v1/maintenance", json=window)
        unknown = await api.post("/v1/maintenance", json={**window, "scope": "hub-9"})
        listed = await api.get("/v1/maintenance")
        cancelled = await api.delete(f"/v1/maintenance/{created.json()['id']}")
    assert created.status_code == 201 and created.json()["created_by"] == "admin"
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "scope"
    assert [w["id"] for w in listed.json()] == [created.json()["id"]]
    assert cancelled.json()["cancelled_at"] is not None


async def test_an_id_too_large_for_the_database_is_a_422_not_a_500(client: ClientFactory) -> None:
    async with client() as api:
        response = await api.get(f"/v1/rules/{2**63}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.rule_id"
