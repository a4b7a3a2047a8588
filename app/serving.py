"""A uvicorn server that leaves process signals to its host (the CLI, a test, a thread)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn


class QuietServer(uvicorn.Server):
    """Serve without installing signal handlers: whoever runs it decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_until(
    server: QuietServer,
    stop: asyncio.Event,
    *,
    sockets: list[socket.socket] | None = None,
    on_started: Callable[[], Any] | None = None,
) -> None:
    """Serve until `stop` is set (or the server gives up); call `on_started` once it listens."""
    serving = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has only a flag
        await asyncio.sleep(0.05)
    if server.started and on_started is not None:
        on_started()
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
    await serving
