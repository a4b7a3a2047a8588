"""The token bucket and the circuit breaker, driven by a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from notifiers.resilience import CircuitBreaker, TokenBucket
from tests.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(monotonic_start=1000.0)


# Token bucket


def test_a_full_bucket_allows_a_burst_then_asks_to_wait_one_token_interval(
    clock: FakeClock,
) -> None:
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock.monotonic)

    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() == pytest.approx(0.5)


def test_a_refused_try_acquire_takes_no_token(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=4.0, burst=1, clock=clock.monotonic)
    bucket.try_acquire()

    assert bucket.try_acquire() == pytest.approx(0.25)
    assert bucket.try_acquire() == pytest.approx(0.25)
    clock.advance(0.25)
    assert bucket.try_acquire() == 0.0


def test_the_bucket_refills_at_rate_and_reports_the_remaining_wait_for_a_partial_token(
    clock: FakeClock,
) -> None:
    bucket = TokenBucket(rate=10.0, burst=5, clock=clock.monotonic)
    for _ in range(5):
        bucket.try_acquire()

    clock.advance(0.35)

    assert bucket.tokens == pytest.approx(3.5)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() == pytest.approx(0.05)


def test_the_bucket_never_holds_more_than_burst_tokens(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=100.0, burst=2, clock=clock.monotonic)
    clock.advance(3600)

    assert bucket.tokens == 2.0
    assert [bucket.try_acquire() for _ in range(3)][-1] == pytest.approx(0.01)


def test_a_clock_that_steps_back_adds_no_tokens(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock.monotonic)
    bucket.try_acquire()
    clock.advance(-10)

    assert bucket.try_acquire() == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_the_bucket_rejects_a_rate_or_burst_it_cannot_honour(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate|burst"):
        TokenBucket(rate=rate, burst=burst)


async def test_acquire_returns_without_sleeping_while_tokens_remain(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock.monotonic, sleep=clock.sleep)

    await bucket.acquire()
    await bucket.acquire()

    assert clock.sleeps == []


async def test_acquire_on_an_empty_bucket_sleeps_exactly_until_the_next_token(
    clock: FakeClock,
) -> None:
    bucket = TokenBucket(rate=4.0, burst=1, clock=clock.monotonic, sleep=clock.sleep)
    await bucket.acquire()
    clock.advance(0.1)

    await bucket.acquire()

    assert clock.sleeps == [pytest.approx(0.15)]
    assert bucket.tokens == pytest.approx(0.0)


async def test_concurrent_acquirers_are_spaced_one_token_interval_apart(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=5.0, burst=1, clock=clock.monotonic, sleep=clock.sleep)
    granted: list[tuple[int, float]] = []

    async def take(index: int) -> None:
        await bucket.acquire()
        granted.append((index, clock.monotonic()))

    await asyncio.gather(*(take(i) for i in range(4)))

    assert [index for index, _ in granted] == [0, 1, 2, 3]
    assert [at - 1000.0 for _, at in granted] == pytest.approx([0.0, 0.2, 0.4, 0.6])
    assert clock.sleeps == pytest.approx([0.2, 0.2, 0.2])


# Circuit breaker


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_the_breaker_stays_closed_below_the_failure_threshold(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30.0, clock=clock.monotonic)

    fail(breaker, 2)

    assert breaker.state == "closed"
    assert breaker.failures == 2
    assert breaker.allow()


def test_a_success_resets_the_consecutive_failure_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30.0, clock=clock.monotonic)

    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 2)

    assert breaker.state == "closed"
    assert breaker.failures == 2


def test_the_breaker_opens_at_the_threshold_and_refuses_calls_until_reset_seconds(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30.0, clock=clock.monotonic)

    fail(breaker, 3)

    assert breaker.state == "open"
    assert not breaker.allow()
    clock.advance(29.9)
    assert breaker.state == "open"
    assert not breaker.allow()


def test_after_reset_seconds_half_open_lets_exactly_one_trial_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=30.0, clock=clock.monotonic)
    fail(breaker, 1)

    clock.advance(30.0)

    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()
    assert not breaker.allow()
    assert breaker.state == "half_open"


def test_a_successful_trial_closes_the_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=30.0, clock=clock.monotonic)
    fail(breaker, 2)
    clock.advance(30.0)
    assert breaker.allow()

    breaker.record_success()

    assert breaker.state == "closed"
    assert breaker.failures == 0
    assert all(breaker.allow() for _ in range(5))


def test_a_failed_trial_reopens_the_breaker_for_another_reset_period(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=5, reset_seconds=30.0, clock=clock.monotonic)
    fail(breaker, 5)
    clock.advance(30.0)
    assert breaker.allow()

    breaker.record_failure()

    assert breaker.state == "open"
    assert not breaker.allow()
    clock.advance(29.0)
    assert breaker.state == "open"
    clock.advance(1.0)
    assert breaker.state == "half_open"
    assert breaker.allow()


def test_a_trial_that_never_reports_frees_its_slot_after_reset_seconds(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10.0, clock=clock.monotonic)
    fail(breaker, 1)
    clock.advance(10.0)
    assert breaker.allow()

    clock.advance(9.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()
    assert not breaker.allow()


def test_results_recorded_while_open_neither_close_nor_extend_it(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10.0, clock=clock.monotonic)
    fail(breaker, 1)

    clock.advance(5.0)
    breaker.record_success()
    breaker.record_failure()

    assert breaker.state == "open"
    clock.advance(5.0)
    assert breaker.state == "half_open"


@pytest.mark.parametrize(("threshold", "reset"), [(0, 30.0), (5, 0.0), (5, -1.0)])
def test_the_breaker_rejects_a_threshold_or_reset_it_cannot_honour(
    threshold: int, reset: float
) -> None:
    with pytest.raises(ValueError, match="failure_threshold|reset_seconds"):
        CircuitBreaker(failure_threshold=threshold, reset_seconds=reset)
