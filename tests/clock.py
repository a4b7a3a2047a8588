"""The one fake clock of the suite: time that moves only when the test moves it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Call it for the wall time (an aware UTC datetime); `monotonic()` gives seconds.

    Both move together, only by `advance()`, `sleep()` or setting `now`. Wall time starts at
    `start` (this second, by default); monotonic time at `monotonic_start`. The monotonic
    reading is kept as a float that each advance adds to, so it is exactly what the test
    added up (the wall time follows from it).
    """

    def __init__(self, start: datetime | None = None, *, monotonic_start: float = 0.0) -> None:
        start = start if start is not None else datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("a FakeClock tells aware time")
        self.start = start
        self.monotonic_start = monotonic_start
        self._monotonic = monotonic_start
        self.sleeps: list[float] = []

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._monotonic - self.monotonic_start)

    @now.setter
    def now(self, value: datetime) -> None:
        self._monotonic = self.monotonic_start + (value - self.start).total_seconds()

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, by: float | timedelta) -> None:
        """Move time on by `by` seconds (or a timedelta); a negative `by` moves it back."""
        self._monotonic += by.total_seconds() if isinstance(by, timedelta) else by

    async def sleep(self, seconds: float) -> None:
        """An `asyncio.sleep` that advances the clock at once (and yields to the loop)."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)
