"""Start Forewarn processes for the reliability suite and read their logs and metrics."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.net import free_port
from tests.e2e.processes import Component


class Failed(AssertionError):
    """A process misbehaved; the message carries the tail of every process log."""


def api_component(env: dict[str, str], log_dir: Path, name: str = "api") -> tuple[Component, str]:
    """A `forewarn api` process on a free port, and its base URL."""
    port = free_port()
    env = {**env, "FOREWARN_API_HOST": "127.0.0.1", "FOREWARN_API_PORT": str(port)}
    return Component("api", env, log_dir, name), f"http://127.0.0.1:{port}"


def scrape(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric `name` in a Prometheus exposition, by their sorted labels."""
    samples: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                samples[tuple(sorted(sample.labels.items()))] = sample.value
    return samples
