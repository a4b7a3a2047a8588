"""Schemathesis against a real `forewarn api` process on SQLite: no request earns a 5xx.

Every operation in the app's own OpenAPI document gets schema-valid requests (positive) and
schema-breaking ones (negative), with an admin token; path parameters are half the time the
ids of real rows, so the handlers behind the 404 are reached too. Any 5xx fails the test,
naming the operation and the request that caused it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from app.db import create_engine, session_factory, transaction
from app.links import unsubscribe_token
from app.migrate import upgrade_to_head
from app.outages.lifecycle import OutageState, Transition
from tests.e2e.processes import components, tails, wait_healthy
from tests.factories import apply_transition, make_rule
from tests.fixtures.db import _empty_all_tables
from tests.integration.api_client import ClientFactory, api_settings, client_factory
from tests.reliability.figures import record, scale
from tests.reliability.processes import api_component

schemathesis = pytest.importorskip(
    "schemathesis",
    reason="schemathesis is not installed (.venv/bin/pip install schemathesis); "
    "the API fuzz test needs it",
)
from schemathesis import GenerationMode  # noqa: E402 - only once it is known to be installed
from schemathesis.checks import not_a_server_error  # noqa: E402

pytestmark = pytest.mark.reliability

ADMIN = "fuzz-admin-token-0123456789"
LINK_SECRET = "link-secret-for-the-api-fuzz"
EXAMPLES = 20 * scale()
# Operations that replace or delete what the others use as known ids run last.
LAST = ("PUT /v1/inventory", "DELETE ")
INVENTORY: dict[str, Any] = {
    "nodes": [
        {"id": "north", "level": "region"},
        {"id": "hub-1", "level": "hub", "parent": "north"},
        {"id": "node-1", "level": "node", "parent": "hub-1"},
    ],
    "devices": [{"id": f"cpe-{i}", "node": "node-1", "services": ["internet"]} for i in range(3)],
    "customers": [
        {
            "id": f"c-{i}",
            "name": f"Customer {i}",
            "phone": f"+4915112345{i:03d}",
            "email": f"customer{i}@example.com",
            "language": "en",
            "channels": ["sms", "email"],
            "devices": [f"cpe-{i}"],
        }
        for i in range(3)
    ],
}
GOOD_EVENT = {"ts": 1_795_000_000_000, "device_id": "cpe-1", "metric": "cpe.online", "value": 1}
LIST_CHANNEL_CONTACT = {"ts": 1_795_000_000_000, "customer_id": "c-1", "channel": []}
RULE: dict[str, Any] = make_rule(services=["internet"])


async def seed(url: str, database_url: str) -> dict[str, str]:
    """Real rows for the path parameters: a rule, a window, an outage, a stored token."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
        (await api.put("/v1/inventory", json=INVENTORY)).raise_for_status()
        rule = (await api.post("/v1/rules", json=RULE)).raise_for_status().json()
        start = datetime.now(UTC) + timedelta(hours=1)
        window = (
            await api.post(
                "/v1/maintenance",
                json={
                    "scope": "hub-1",
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=2)).isoformat(),
                    "reason": "fibre splicing",
                    "services": ["internet"],
                },
            )
        ).raise_for_status()
        token = await api.post("/v1/tokens", json={"name": "dashboard", "role": "viewer"})
        token.raise_for_status()
    engine = create_engine(database_url)
    try:
        now = datetime.now(UTC)
        async with transaction(session_factory(engine)) as session:
            await apply_transition(
                session=session,
                transition=Transition(
                    rule_id=int(rule["id"]),
                    rule_version=1,
                    rule_name=RULE["name"],
                    scope_level="node",
                    scope_id="node-1",
                    to_state=OutageState.OPEN,
                    at=now,
                    started_at=now,
                    severity="major",
                    services=("internet",),
                ),
                next_update_interval=timedelta(minutes=30),
            )
    finally:
        await engine.dispose()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
        outage = (await api.get("/v1/outages")).raise_for_status().json()["items"][0]
        windows = (await api.get("/v1/maintenance")).raise_for_status().json()
    return {
        "rule_id": str(rule["id"]),
        "window_id": str(window.json()["id"]),
        "outage_id": outage["id"],
        "customer_id": "c-1",
        "name": "dashboard",
        "token": outage["status_url"].rsplit("/", 1)[1],
        "maintenance_token": windows[0].get("public_url", "/m/x").rsplit("/", 1)[1],
        "unsubscribe_token": unsubscribe_token(LINK_SECRET, "c-1", "sms"),
    }


def known_ids(path: str, ids: dict[str, str]) -> dict[str, str]:
    """Path parameters that name real rows, for the operations that take them."""
    token = ids["token"]
    if path.startswith("/m/"):
        token = ids["maintenance_token"]
    elif path.startswith("/u/"):
        token = ids["unsubscribe_token"]
    return {**ids, "token": token}


def fuzz_operation(operation: Any, base_url: str, ids: dict[str, str]) -> tuple[int, list[str]]:
    """Send EXAMPLES positive and EXAMPLES negative cases; return (requests, failures)."""
    failures: list[str] = []
    sent = 0
    headers = {"Authorization": f"Bearer {ADMIN}"}
    label = f"{operation.method.upper()} {operation.path}"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategy = operation.as_strategy(generation_mode=mode)
        real = known_ids(operation.path, ids)

        def with_real_ids(case: Any, real: dict[str, str] = real) -> Any:
            if case.path_parameters:
                case.path_parameters = {
                    name: real.get(name, value) for name, value in case.path_parameters.items()
                }
            return case

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],  # the first 5xx is enough; shrinking costs minutes
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategy, strategy.map(with_real_ids)))
        def run(case: Any) -> None:
            nonlocal sent
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            sent += 1
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            continue  # nothing in this operation's schema can be made invalid (no parameters)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect, fail at the end
            failures.append(f"{label} ({mode.value}): {type(exc).__name__}: {exc}"[:3000])
    return sent, failures


async def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    await asyncio.to_thread(upgrade_to_head, database_url)
    env = {
        "FOREWARN_DATABASE_URL": database_url,
        "FOREWARN_API_TOKENS": f"fuzz:admin:{ADMIN}",
        "FOREWARN_LINK_SECRET": LINK_SECRET,
        "FOREWARN_SMS_GATEWAY_TOKEN": "AC0123456789:gateway-auth-token",
        "FOREWARN_LOG_FORMAT": "json",
        "FOREWARN_LOG_LEVEL": "warning",
    }
    api, url = api_component(env, tmp_path)
    with components(api) as procs:
        api.start()
        await wait_healthy(url, procs)
        ids = await seed(url, database_url)
        env["FOREWARN_PUBLIC_BASE_URL"] = url
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        operations.sort(key=lambda op: f"{op.method.upper()} {op.path}".startswith(LAST))
        started = time.monotonic()
        sent = 0
        failures: list[str] = []
        for operation in operations:
            count, failed = await asyncio.to_thread(fuzz_operation, operation, url, ids)
            sent += count
            failures += failed
        seconds = time.monotonic() - started
        alive = api.running
        log = api.log()
    record(
        "api_fuzz",
        {
            "operations": len(operations),
            "examples_per_operation_and_mode": EXAMPLES,
            "requests": sent,
            "server_errors": len(failures),
            "seconds": round(seconds, 1),
        },
    )
    assert alive, tails(procs)
    assert not failures, "\n\n".join(failures) + "\n" + log[-5000:]
    assert len(operations) >= 30 and sent >= len(operations) * EXAMPLES


async def test_every_v1_route_without_a_token_gets_401(tmp_path: Path) -> None:
    """A smoke check over the live spec (tests/integration/test_api.py covers roles)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    await asyncio.to_thread(upgrade_to_head, database_url)
    env = {"FOREWARN_DATABASE_URL": database_url, "FOREWARN_API_TOKENS": f"fuzz:admin:{ADMIN}"}
    api, url = api_component(env, tmp_path)
    with components(api) as procs:
        api.start()
        await wait_healthy(url, procs)
        async with httpx.AsyncClient(base_url=url, timeout=10) as anonymous:
            spec = (await anonymous.get("/openapi.json")).json()
            checked = []
            for path, operations in spec["paths"].items():
                if not path.startswith("/v1/") or path.startswith("/v1/webhooks/"):
                    continue
                concrete = path
                for name in ("rule_id", "window_id", "outage_id", "customer_id", "name"):
                    concrete = concrete.replace("{" + name + "}", "1")
                for method in operations:
                    response = await anonymous.request(method.upper(), concrete)
                    checked.append((method.upper(), path, response.status_code))
    assert checked and all(status == 401 for _, _, status in checked), [
        c for c in checked if c[2] != 401
    ]


@pytest.fixture
async def in_process_api(sqlite_url: str) -> AsyncIterator[ClientFactory]:
    engine = create_engine(sqlite_url)
    await _empty_all_tables(engine)
    yield client_factory(api_settings(sqlite_url), session_factory(engine))
    await engine.dispose()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/rules/99999999999999999999"),
        ("GET", "/v1/rules/99999999999999999999/versions"),
        ("DELETE", "/v1/rules/99999999999999999999"),
        ("DELETE", "/v1/maintenance/99999999999999999999"),
    ],
)
async def test_an_id_beyond_the_integer_column_is_refused_not_a_server_error(
    in_process_api: ClientFactory, method: str, path: str
) -> None:
    async with in_process_api() as api:
        response = await api.request(method, path)
    assert response.status_code in (404, 422)


@pytest.mark.parametrize("duration", [1e17, -4.6e16, "99999999999d"])
async def test_a_duration_beyond_timedeltas_range_is_refused_with_422(
    in_process_api: ClientFactory, duration: object
) -> None:
    rule = {**RULE, "for": duration}
    async with in_process_api() as api:
        response = await api.post("/v1/rules/validate", json=rule)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"events": [{**GOOD_EVENT, "value": 2**70}]},
        {"events": [GOOD_EVENT], "contacts": [LIST_CHANNEL_CONTACT]},
    ],
    ids=["integer-beyond-64-bits", "contact-channel-a-list"],
)  # fmt: skip
async def test_a_backtest_with_a_malformed_inline_event_is_refused_with_422(
    in_process_api: ClientFactory, body: dict[str, Any]
) -> None:
    async with in_process_api() as api:
        rule = (await api.post("/v1/rules", json=RULE)).json()
        response = await api.post(f"/v1/rules/{rule['id']}/backtest", json=body)
    assert response.status_code == 422
