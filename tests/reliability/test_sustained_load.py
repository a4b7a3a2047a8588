"""A steady telemetry rate for minutes (tests/reliability/load.py): memory stays flat, the
detector keeps up, and the outages that come and go all along are each found and told once.

`make test` runs it for 60 s at 2,000 messages a second; `make reliability` for 10 minutes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from consumers.broker import EmbeddedBroker
from tests.reliability.figures import load_rate, load_seconds, record
from tests.reliability.load import MEASURED, SAMPLE_EVERY, LoadResult, run_load, steady_growth

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300 + 2 * load_seconds())]

# Resident memory may move this much between the second and the last quarter of the run
# (allocator noise, a batch in flight); a leak of 100 bytes a message at 2,000 messages a
# second grows by 12 MiB a minute and fails the 10-minute run by far.
MEMORY_GROWTH_MIB = 16.0
# Lag, in seconds of traffic: never this far behind, and no growing trend beyond a second's
# worth. Generous on purpose (shared, noisy machines): a detector that cannot keep up falls
# further behind without bound and fails both.
MAX_LAG_SECONDS = 30.0
LAG_GROWTH_SECONDS = 1.0


@pytest.fixture(scope="module")
def load(
    postgresql_url: str, kafka_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> LoadResult:
    """Run the load once for this module, on a loop of its own (as the storm does)."""
    with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
        return pool.submit(
            asyncio.run,
            run_load(
                database_url=postgresql_url,
                bootstrap=kafka_broker.bootstrap_servers,
                log_dir=tmp_path_factory.mktemp("load"),
                rate=load_rate(),
                seconds=load_seconds(),
            ),
        ).result()


def test_every_process_stays_up_and_stops_cleanly(load: LoadResult) -> None:
    assert load.exit_codes == dict.fromkeys(MEASURED, 0)


def test_each_fault_opens_exactly_one_outage_and_it_resolves(load: LoadResult) -> None:
    faults_by_node = Counter(f.node for f in load.faults)
    outages_by_node = Counter(o["scope_id"] for o in load.outages)
    assert outages_by_node == faults_by_node
    assert {o["state"] for o in load.outages} == {"resolved"}


def test_every_affected_customer_is_told_once_per_stage_on_each_channel(load: LoadResult) -> None:
    expected = {
        (customer, outage["id"], stage, channel)
        for outage in load.outages
        for customer in load.affected(outage["scope_id"])
        for stage in ("detected", "resolved")
        for channel in load.network.customers[customer]["channels"]
    }
    planned = Counter(
        (r["customer_id"], r["outage_id"], r["stage"], r["channel"]) for r in load.rows
    )
    assert max(planned.values()) == 1, "a notice was planned twice"
    assert set(planned) == expected
    assert {r["state"] for r in load.rows} == {"sent"}
    by_channel = Counter(r["channel"] for r in load.rows)
    assert load.sms_accepted == by_channel["sms"]
    assert load.emails_accepted == by_channel["email"]


def test_memory_stays_flat(load: LoadResult) -> None:
    growth = {
        role: round(steady_growth([s.rss_mib[role] for s in load.samples]), 1) for role in MEASURED
    }
    record_figures(load, growth)
    assert len(load.samples) >= 8, "too few samples to judge"
    leaking = {role: mib for role, mib in growth.items() if mib > MEMORY_GROWTH_MIB}
    assert not leaking, (leaking, [(s.at, s.rss_mib) for s in load.samples])


def test_the_detector_keeps_up(load: LoadResult) -> None:
    lags = [s.lag / load.rate for s in load.samples]
    assert max(lags) <= MAX_LAG_SECONDS, [(s.at, s.lag) for s in load.samples]
    assert steady_growth(lags) <= LAG_GROWTH_SECONDS, [(s.at, s.lag) for s in load.samples]
    assert load.consumed == load.produced


def record_figures(load: LoadResult, growth: dict[str, float]) -> None:
    first, last = load.samples[0], load.samples[-1]
    lags = [s.lag for s in load.samples]
    record(
        "sustained_load",
        {
            "seconds": load.seconds,
            "rate_per_second": load.rate,
            "devices": len(load.network.reporting()),
            "messages": load.produced,
            "faults": len(load.faults),
            "outages": len(load.outages),
            "notices": len(load.rows),
            "sms_accepted": load.sms_accepted,
            "emails_accepted": load.emails_accepted,
            "samples": len(load.samples),
            "sample_every_seconds": SAMPLE_EVERY,
            "rss_mib_first": {r: round(first.rss_mib[r], 1) for r in MEASURED},
            "rss_mib_last": {r: round(last.rss_mib[r], 1) for r in MEASURED},
            "rss_mib_peak": {
                r: round(max(s.rss_mib[r] for s in load.samples), 1) for r in MEASURED
            },
            "rss_growth_after_warmup_mib": growth,
            "lag_messages_max": max(lags),
            "lag_messages_median": sorted(lags)[len(lags) // 2],
            "catch_up_seconds": load.catch_up_seconds,
        },
    )
