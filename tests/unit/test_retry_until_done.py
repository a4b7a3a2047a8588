"""`app.db.retry_until_done`: the wait for a database shared by the detector and the API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from app.db import retry_until_done
from app.errors import unavailable
from tests.waiting import eventually


async def retry_while_unreachable(work: Callable[[], Awaitable[None]]) -> None:
    """As the detector waits at start-up: only while the database cannot be reached."""
    await retry_until_done(
        work,
        stop=asyncio.Event(),
        every=0.01,
        retry=lambda exc: unavailable(exc) is not None,
        waiting="waiting",
    )


def down() -> OperationalError:
    return OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


async def test_work_that_meets_an_unreachable_database_is_tried_again_until_it_succeeds() -> None:
    attempts: list[int] = []

    async def work() -> None:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise down()

    await retry_while_unreachable(work)
    assert attempts == [0, 1, 2]


async def test_an_error_the_caller_does_not_retry_is_raised_at_once() -> None:
    attempts: list[int] = []

    async def work() -> None:
        attempts.append(1)
        raise ProgrammingError("SELECT * FROM nowhere", {}, Exception("no such table"))

    with pytest.raises(ProgrammingError):
        await retry_while_unreachable(work)
    assert attempts == [1]


async def test_setting_stop_ends_the_wait_without_another_attempt() -> None:
    stop = asyncio.Event()
    attempts: list[int] = []

    async def work() -> None:
        attempts.append(1)
        raise down()

    waiting = asyncio.create_task(
        retry_until_done(work, stop=stop, every=60.0, retry=lambda _exc: True, waiting="waiting")
    )
    await eventually(lambda: attempts, "the first attempt", seconds=5, every=0.01)
    stop.set()
    await asyncio.wait_for(waiting, 5)
    assert attempts == [1]
