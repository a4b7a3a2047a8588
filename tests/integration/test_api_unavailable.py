"""A database that cannot be reached gets 503 with Retry-After, never a bare 500."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.db import create_engine, session_factory
from app.errors import unavailable
from app.net import free_port
from tests.integration.api_client import api_settings, client_factory
from tests.restarting_postgres import RestartingPostgres


async def test_the_api_answers_503_with_retry_after_while_postgresql_is_unreachable() -> None:
    # Nothing listens on this port: what the API sees while PostgreSQL restarts.
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/forewarn"
    engine = create_engine(url)
    client = client_factory(api_settings(url), session_factory(engine))
    try:
        async with client() as http:
            response = await http.get("/v1/rules")
            readiness = await http.get("/readyz")
    finally:
        await engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    # asyncpg raises a bare ConnectionRefusedError: the API cannot tell it from the broker's.
    assert response.json() == {
        "detail": "a service Forewarn needs (database or broker) cannot be reached; retry shortly"
    }
    assert readiness.status_code == 503


async def test_the_api_answers_503_while_postgresql_is_starting_up() -> None:
    async with RestartingPostgres("postgresql+asyncpg://postgres@127.0.0.1:5432/forewarn") as pg:
        engine = create_engine(pg.url)
        client = client_factory(api_settings(pg.url), session_factory(engine))
        try:
            async with client() as http:
                response = await http.get("/v1/lookup", params={"phone": "+4915100000081"})
        finally:
            await engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"detail": "the database is unavailable; retry shortly"}
    assert pg.refused >= 1


class _Driver(Exception):
    """A driver error as SQLAlchemy's asyncpg adapter gives it: its SQLSTATE as `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "unreachable"),
    [
        (OperationalError("SELECT 1", {}, ConnectionRefusedError()), True),
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (DBAPIError("SELECT 1", {}, _Driver("57P01")), True),
        (DBAPIError("SELECT 1", {}, _Driver("08006")), True),
        (DBAPIError("SELECT 1", {}, _Driver("40P01")), False),
        (DBAPIError("UPDATE customers", {}, _Driver("55P03")), True),  # lock_timeout
        (DBAPIError("UPDATE customers", {}, _Driver("57014")), True),  # statement_timeout
        (IntegrityError("INSERT", {}, ValueError("duplicate key")), False),
        (FileNotFoundError("template"), False),
    ],
)
def test_only_connection_failures_count_as_unavailable(
    exc: BaseException, unreachable: bool
) -> None:
    assert (unavailable(exc) is not None) is unreachable
