"""`forewarn detector`, built the same way, that dies between its database commit and its
publish, as a kill -9 could: `python -m tests.e2e.failing_detector`, same environment."""

from __future__ import annotations

import asyncio
import os

from forewarn.cli_common import load_settings
from forewarn.runtime import Hooks, install_stop_signals, open_runtime, run_until_stopped

EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def die() -> None:
    """Leave at once: no clean-up, no publish, no offset commit."""
    os._exit(EXIT_CODE)


async def main() -> None:
    settings = load_settings()
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with open_runtime(settings, embedded_broker=False, migrate=False) as runtime:
        await run_until_stopped(runtime, {"detector"}, stop, Hooks(after_persist=die))


if __name__ == "__main__":
    asyncio.run(main())
