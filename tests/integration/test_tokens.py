"""Stored API tokens: created once in clear, kept as digests, revoked, seeded from the settings."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from app.auth import TokenRegistry, UnauthenticatedError
from app.db import transaction
from app.exceptions import ConflictError
from app.settings import ApiToken, Role
from app.tokens.models import StoredToken
from app.tokens.service import (
    SEEDED_BY,
    create_token,
    find_token,
    list_tokens,
    revoke_token,
    seed_tokens,
    stored_token_lookup,
)
from forewarn.cli import app as cli
from tests.clock import FakeClock
from tests.integration.api_client import ClientFactory, api_settings, client_factory
from tests.integration.test_api import RULES

pytestmark = pytest.mark.integration


@pytest.fixture
def client(database_url: str, sessions: async_sessionmaker[AsyncSession]) -> ClientFactory:
    return client_factory(api_settings(database_url), sessions)


async def test_a_created_token_is_shown_once_works_for_its_role_and_only_its_digest_is_kept(
    client: ClientFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with client() as admin:
        created = await admin.post("/v1/tokens", json={"name": "noc-bot", "role": "engineer"})
        listed = await admin.get("/v1/tokens")
    token = created.json()["token"]
    async with client(None) as bot:
        bot.headers["Authorization"] = f"Bearer {token}"
        rule = await bot.post("/v1/rules", json=RULES[0])
        inventory = await bot.put("/v1/inventory", json={"nodes": []})

    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    assert token.startswith("fw_") and len(token) >= 40
    assert created.json()["created_by"] == "admin"
    assert [t["name"] for t in listed.json()] == ["noc-bot"]
    assert listed.json()[0]["source"] == "stored"
    assert token not in listed.text and "digest" not in listed.text
    assert rule.status_code == 201
    assert inventory.status_code == 403
    async with sessions() as session:
        row = await session.scalar(select(StoredToken).where(StoredToken.name == "noc-bot"))
    assert row is not None and row.digest == hashlib.sha256(token.encode()).digest()
    assert row.last_used_at is not None


async def test_a_name_is_taken_once_and_never_one_of_the_settings_or_an_address(
    client: ClientFactory,
) -> None:
    async with client() as admin:
        first = await admin.post("/v1/tokens", json={"name": "ops", "role": "viewer"})
        again = await admin.post("/v1/tokens", json={"name": "ops", "role": "admin"})
        settings_name = await admin.post("/v1/tokens", json={"name": "viewer", "role": "viewer"})
        address = await admin.post(
            "/v1/tokens", json={"name": "anna@example.com", "role": "viewer"}
        )
        phone = await admin.post("/v1/tokens", json={"name": "+4915112345678", "role": "viewer"})
    assert first.status_code == 201
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert settings_name.status_code == 409
    assert "FOREWARN_API_TOKENS" in settings_name.json()["detail"]
    assert address.status_code == 422 and address.json()["errors"][0]["field"] == "name"
    assert phone.status_code == 422


async def test_a_revoked_token_stops_working_at_once_on_the_api_that_revoked_it(
    client: ClientFactory,
) -> None:
    async with client() as admin:
        token = (await admin.post("/v1/tokens", json={"name": "tmp", "role": "viewer"})).json()[
            "token"
        ]
        async with client(None) as user:
            user.headers["Authorization"] = f"Bearer {token}"
            before = await user.get("/v1/rules")
            revoked = await admin.delete("/v1/tokens/tmp")
            after = await user.get("/v1/rules")
        again = await admin.delete("/v1/tokens/tmp")
        unknown = await admin.delete("/v1/tokens/nobody")
        from_settings = await admin.delete("/v1/tokens/viewer")
        listed = (await admin.get("/v1/tokens")).json()
    assert before.status_code == 200
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert after.status_code == 401
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert unknown.status_code == 404
    assert from_settings.status_code == 409
    assert [(t["name"], t["revoked_at"] is not None) for t in listed] == [("tmp", True)]


async def test_another_process_stops_accepting_a_revoked_token_when_its_cache_expires(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        token = await create_token(session=session, name="dash", role=Role.VIEWER, actor="t")
    clock = FakeClock(monotonic_start=1000.0)
    other = TokenRegistry((), lookup=stored_token_lookup(sessions), monotonic=clock.monotonic)
    header = f"Bearer {token}"

    assert (await other.authenticate(header)).name == "dash"
    async with transaction(sessions) as session:
        await revoke_token(session=session, name="dash", actor="t")
    clock.advance(29.0)
    assert (await other.authenticate(header)).role is Role.VIEWER  # still cached
    clock.advance(2.0)
    with pytest.raises(UnauthenticatedError):
        await other.authenticate(header)


async def test_last_use_is_noted_at_most_once_a_minute(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    async with transaction(sessions) as session:
        token = await create_token(session=session, name="dash", role=Role.VIEWER, actor="t")
    digest = hashlib.sha256(token.encode()).digest()
    clock = FakeClock(start)
    seen = []
    for seconds in (0, 30, 59, 61, 90):
        clock.now = start + timedelta(seconds=seconds)
        async with transaction(sessions) as session:
            row = await find_token(session=session, digest=digest, clock=clock)
            assert row is not None
            seen.append(row.last_used_at)
    assert seen == [start] * 3 + [start + timedelta(seconds=61)] * 2


def _settings_token(name: str, role: Role, secret: str) -> ApiToken:
    return ApiToken(name, role, SecretStr(secret))


async def test_settings_tokens_are_seeded_as_digests_listed_and_only_they_authenticate_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    noc = _settings_token("noc", Role.ENGINEER, "noc-token-0123456789")
    ops = _settings_token("ops", Role.VIEWER, "ops-token-0123456789")
    async with transaction(sessions) as session:
        await create_token(session=session, name="ops", role=Role.ADMIN, actor="t")
        await seed_tokens(session=session, tokens=(noc, ops))
        await seed_tokens(session=session, tokens=(noc, ops))  # every start seeds again
    async with transaction(sessions) as session:
        rows = {row.name: row for row in await list_tokens(session=session)}
        noc_digest = hashlib.sha256(b"noc-token-0123456789").digest()
        found = await find_token(session=session, digest=noc_digest)
    assert {name: (row.role, row.created_by) for name, row in rows.items()} == {
        "noc": ("engineer", SEEDED_BY),
        "ops": ("viewer", SEEDED_BY),  # the settings win over a stored token of that name
    }
    assert rows["noc"].digest == noc_digest
    assert found is None  # a settings token authenticates from the settings, not the table

    async with transaction(sessions) as session:
        await seed_tokens(session=session, tokens=(noc,))  # ops left the settings
        with pytest.raises(ConflictError, match="FOREWARN_API_TOKENS"):
            await revoke_token(session=session, name="noc", actor="t")
    async with sessions() as session:
        rows = {row.name: row for row in await list_tokens(session=session)}
    assert rows["ops"].revoked_at is not None and rows["noc"].revoked_at is None


# The CLI, end to end, against a fresh migrated SQLite file.


def test_the_cli_creates_lists_and_revokes_tokens_printing_a_token_only_once(
    cli_database: Path,
) -> None:
    runner = CliRunner(env={"FOREWARN_DATABASE_URL": f"sqlite+aiosqlite:///{cli_database}"})

    created = runner.invoke(cli, ["token", "create", "--name", "ci", "--role", "engineer"])
    duplicate = runner.invoke(cli, ["token", "create", "--name", "ci", "--role", "viewer"])
    listed = runner.invoke(cli, ["token", "list"])
    revoked = runner.invoke(cli, ["token", "revoke", "ci"])
    unknown = runner.invoke(cli, ["token", "revoke", "nobody"])

    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("fw_")
    assert "shown only this once" in " ".join(created.stderr.split())
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    assert listed.exit_code == 0 and "ci" in listed.output and "engineer" in listed.output
    assert token not in listed.output
    assert revoked.exit_code == 0 and unknown.exit_code == 1
    with sqlite3.connect(cli_database) as connection:
        rows = connection.execute("SELECT name, revoked_at, created_by FROM api_tokens").fetchall()
        audit = connection.execute("SELECT actor, action, entity_id FROM audit_log").fetchall()
    assert [(name, revoked_at is not None) for name, revoked_at, _ in rows] == [("ci", True)]
    assert rows[0][2].startswith("cli")
    assert sorted(action for _, action, _ in audit) == ["create", "revoke"]
    assert all(actor.startswith("cli") for actor, _, _ in audit)
