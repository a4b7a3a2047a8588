"""A database that cannot be reached gets 503 with Retry-After, never a bare 500."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from app.db import create_engine, session_factory
from app.errors import unavailable
from consumers.broker import free_port
from tests.integration.api_client import api_settings, client_factory


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


@asynccontextmanager
async def postgres_starting_up() -> AsyncIterator[int]:
    """A loopback server that answers each connection as PostgreSQL does for the seconds a
    restart takes: no TLS, then FATAL 57P03 "the database system is starting up"."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            (code,) = struct.unpack("!i", await reader.readexactly(4))
            await reader.readexactly(length - 8)
            if code != 80877103:  # anything but an SSLRequest is the startup message
                break
            writer.write(b"N")
        fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
        writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_the_api_answers_503_while_postgresql_is_starting_up() -> None:
    async with postgres_starting_up() as port:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/forewarn"
        engine = create_engine(url)
        client = client_factory(api_settings(url), session_factory(engine))
        try:
            async with client() as http:
                response = await http.get("/v1/lookup", params={"phone": "+4915100000081"})
        finally:
            await engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {"detail": "the database is unavailable; retry shortly"}


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
        (IntegrityError("INSERT", {}, ValueError("duplicate key")), False),
        (FileNotFoundError("template"), False),
    ],
)
def test_only_connection_failures_count_as_unavailable(
    exc: BaseException, unreachable: bool
) -> None:
    assert (unavailable(exc) is not None) is unreachable
