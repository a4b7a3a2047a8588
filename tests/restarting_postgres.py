"""A loopback stand-in for PostgreSQL in the seconds a restart takes, in front of the real one."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from types import TracebackType

from sqlalchemy.engine import make_url

SSL_REQUEST = 80877103  # the code a client sends, instead of a protocol version, to ask for TLS
STARTING_UP = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"


class RestartingPostgres:
    """While it is down, answer every connection as a starting PostgreSQL does (no TLS, then
    FATAL 57P03 "the database system is starting up"); while it is up, pass connections through
    to the server of `database_url`. It starts down; `refused` counts the connections turned
    away."""

    def __init__(self, database_url: str) -> None:
        self._target = make_url(database_url)
        self.up = False
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """`database_url` with this stand-in's address in place of the server's."""
        assert self._server is not None, "not started"
        port = self._server.sockets[0].getsockname()[1]
        rendered: str = self._target.set(host="127.0.0.1", port=port).render_as_string(
            hide_password=False
        )
        return rendered

    async def __aenter__(self) -> RestartingPostgres:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    def start(self) -> None:
        """Let connections through from now on."""
        self.up = True

    def stop(self) -> None:
        """Go down as `pg_ctl stop --mode fast` does: every open session is cut."""
        self.up = False
        for pipe in list(self._pipes):
            pipe.cancel()

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            if self.up:
                await self._forward(reader, writer)
            else:
                await self._refuse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the session was cut
        finally:
            self._pipes.discard(task)
            writer.close()

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.refused += 1
        while True:
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            (code,) = struct.unpack("!i", await reader.readexactly(4))
            await reader.readexactly(length - 8)
            if code != SSL_REQUEST:  # the startup message: say why not, then hang up
                break
            writer.write(b"N")
        writer.write(b"E" + struct.pack("!i", len(STARTING_UP) + 4) + STARTING_UP)
        await writer.drain()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self._target.host or "127.0.0.1", self._target.port or 5432
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        try:
            await asyncio.gather(_copy(reader, upstream_writer), _copy(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        writer.write_eof()
