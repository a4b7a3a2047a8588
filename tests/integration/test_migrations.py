"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.migrate import alembic_config, current_revision, head_revision, upgrade_to_head
from app.models import Base


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(db_engine: AsyncEngine) -> None:
    async with db_engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


async def test_database_is_at_the_head_revision(db_engine: AsyncEngine, database_url: str) -> None:
    async with db_engine.connect() as connection:
        revision = await connection.run_sync(current_revision)
    assert revision is not None
    assert revision == head_revision(database_url)


def test_db_upgrade_command_creates_the_schema_on_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    env = {**os.environ, "FOREWARN_DATABASE_URL": url}
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "forewarn", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"database at revision {head_revision(url)}" in result.stderr


def test_a_bad_setting_stops_start_up_and_names_the_variable() -> None:
    env = {**os.environ, "FOREWARN_API_PORT": "not-a-port"}
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "forewarn", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "FOREWARN_API_PORT" in result.stderr


async def test_opt_outs_stored_before_consents_were_kept_apart_survive_the_upgrade(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0001")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO customers (id, name, language, timezone, channels, opt_outs,"
                    " priority) VALUES ('c-1', 'Anna', 'de', 'UTC', '[\"sms\", \"email\"]',"
                    " '[\"sms\"]', 0), ('c-2', 'Ben', 'en', 'UTC', '[\"sms\"]', '[]', 0)"
                )
            )
        await asyncio.to_thread(upgrade_to_head, url)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT customer_id, channel, opted_out, source FROM consents")
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [("c-1", "sms", 1, "migrated")]
