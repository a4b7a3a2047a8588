"""The one way the suite waits: poll for the condition, never sleep for a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any] | Any],
    what: str,
    *,
    seconds: float = 60.0,
    every: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy, and return that.

    After `seconds` raise AssertionError naming `what`, with `detail()` (say, process logs)
    and the last value `check` returned. An exception `check` raises is not caught.
    """
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            message = f"timed out after {seconds:g} s waiting for {what} (last: {result!r})"
            raise AssertionError(f"{message}\n{detail()}" if detail is not None else message)
        await asyncio.sleep(every)
