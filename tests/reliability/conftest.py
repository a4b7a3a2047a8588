"""The storm, run once per session for test_storm.py and test_logs.py, and the figures."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from consumers.broker import EmbeddedBroker
from tests.reliability.figures import SESSION, scale, storm_customers_per_node
from tests.reliability.storm import StormResult, run_storm

# The storm runs once per session; the first test that asks for it pays for it.
STORM_TIMEOUT = 600 + 240 * scale()


@pytest.fixture(scope="session")
def storm(
    postgresql_url: str,
    kafka_broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StormResult]:
    """Run the storm (tests/reliability/storm.py); keep its API process until the session ends.

    It runs on a loop of its own in a worker thread, so it neither needs nor disturbs the
    event loops pytest-asyncio gives the tests. `FOREWARN_RELIABILITY_SEED` replays the kill
    moments of an earlier run.
    """
    seed = int(os.environ.get("FOREWARN_RELIABILITY_SEED") or random.randrange(1_000_000))  # noqa: S311
    log_dir = tmp_path_factory.mktemp("storm")
    with ThreadPoolExecutor(1, thread_name_prefix="storm") as pool:
        result = pool.submit(
            asyncio.run,
            run_storm(
                database_url=postgresql_url,
                bootstrap=kafka_broker.bootstrap_servers,
                log_dir=log_dir,
                scale=scale(),
                seed=seed,
                customers_per_node=storm_customers_per_node(),
                broker=kafka_broker,
            ),
        ).result()
    try:
        yield result
    finally:
        result.api.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the figures this session recorded, whatever the capture mode."""
    if not SESSION:
        return
    terminalreporter.section("reliability figures (also in bench/results/reliability.json)")
    for name, figures in SESSION.items():
        shown = {k: v for k, v in figures.items() if k not in ("when", "python")}
        terminalreporter.write_line(f"{name}: {shown}")
