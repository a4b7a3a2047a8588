"""Pace calls to a provider (`TokenBucket`) and stop calling one that keeps failing
(`CircuitBreaker`).

Both take their clock as a parameter and know nothing of channels, so they can wrap any call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class TokenBucket:
    """Allow `rate` calls per second on average and bursts of up to `burst` calls.

    The bucket starts full. `acquire` waits until a token is free; concurrent callers queue on
    an `asyncio.Lock`, which wakes them in arrival order, so none is starved.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def tokens(self) -> float:
        """Return the tokens available now (fractional while refilling)."""
        self._refill()
        return self._tokens

    def try_acquire(self) -> float:
        """Take a token and return 0.0, or take none and return the seconds until one is free."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    async def acquire(self) -> None:
        """Take a token, waiting for one first if the bucket is empty."""
        async with self._lock:
            while (wait := self.try_acquire()) > 0.0:
                await self._sleep(wait)

    def _refill(self) -> None:
        """Add the tokens earned since the last refill, up to `burst`."""
        now = self._clock()
        elapsed = max(now - self._updated, 0.0)
        self._updated = now
        self._tokens = min(self._tokens + elapsed * self.rate, float(self.burst))


class CircuitBreaker:
    """Stop calling a provider after `failure_threshold` consecutive failures, then probe it.

    - closed: every call is allowed; `failure_threshold` consecutive failures open the breaker.
    - open: no call is allowed until `reset_seconds` have passed, then the breaker is half open.
    - half_open: `allow` lets one trial call through at a time; its success closes the breaker,
      its failure opens it for another `reset_seconds`. A trial that records nothing within
      `reset_seconds` (a cancelled call) no longer blocks the next one.

    Callers must `record_failure` only for temporary failures (timeouts, refused connections,
    5xx, 429): they say the provider is unwell. A permanent error (an invalid number, a 410) is
    the provider answering normally about one notice; record it as a success, or a trial call
    in half_open state would hold the slot until `reset_seconds` pass.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_seconds <= 0:
            raise ValueError("reset_seconds must be positive")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_started: float | None = None

    @property
    def state(self) -> BreakerState:
        """Return "closed", "open" or "half_open" as of now."""
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_seconds:
            self._state = "half_open"
            self._trial_started = None
        return self._state

    @property
    def failures(self) -> int:
        """Return the consecutive failures recorded while closed."""
        return self._failures

    def allow(self) -> bool:
        """Tell whether a call may go ahead now; in half_open, reserve the one trial slot."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._trial_started is not None and now - self._trial_started < self.reset_seconds:
            return False
        self._trial_started = now
        return True

    def record_success(self) -> None:
        """Note a call that reached the provider: close the breaker and forget past failures."""
        if self.state == "open":
            # A call that started before the breaker opened proves too little to close it.
            return
        self._state = "closed"
        self._failures = 0
        self._trial_started = None

    def record_failure(self) -> None:
        """Note a temporary failure: count it while closed, re-open from half_open."""
        state = self.state
        if state == "open":
            return
        if state == "half_open":
            self._open()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        """Stop allowing calls for `reset_seconds` from now."""
        self._state = "open"
        self._opened_at = self._clock()
        self._failures = 0
        self._trial_started = None
