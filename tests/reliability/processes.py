"""Start Forewarn processes for the reliability suite and wait for them to be ready."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.net import free_port
from tests.e2e.processes import Component


class Failed(AssertionError):
    """Waiting ran out; the message carries the tail of every process log."""


def tails(procs: Sequence[Component], chars: int = 3000) -> str:
    return "\n".join(f"--- {p.log_path.name}\n{p.log()[-chars:]}" for p in procs)


async def eventually(
    check: Callable[[], Awaitable[object] | object],
    what: str,
    procs: Sequence[Component] = (),
    seconds: float = 90.0,
    every: float = 0.25,
) -> object:
    """Poll `check` until it returns something truthy; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {seconds:.0f} s waiting for {what}\n{tails(procs)}")
        await asyncio.sleep(every)


def api_component(env: dict[str, str], log_dir: Path, name: str = "api") -> tuple[Component, str]:
    """A `forewarn api` process on a free port, and its base URL."""
    port = free_port()
    env = {**env, "FOREWARN_API_HOST": "127.0.0.1", "FOREWARN_API_PORT": str(port)}
    return Component("api", env, log_dir, name), f"http://127.0.0.1:{port}"


async def wait_healthy(url: str, procs: Sequence[Component], seconds: float = 60.0) -> None:
    """Wait until `url`/healthz answers 200 (the process has started serving)."""

    async def healthy() -> bool:
        for proc in procs:
            if not proc.running:
                raise Failed(f"{proc.log_path.name} exited\n{tails(procs)}")
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(healthy, f"{url}/healthz", procs, seconds)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a process log (other lines, like the start banner, skipped)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def logged(proc: Component, event: str) -> int:
    """How many JSON log lines of `proc` have this event text."""
    return sum(1 for line in json_lines(proc.log()) if line.get("event") == event)


def scrape(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric `name` in a Prometheus exposition, by their sorted labels."""
    samples: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                samples[tuple(sorted(sample.labels.items()))] = sample.value
    return samples
