"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrate import current_revision, head_revision
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
