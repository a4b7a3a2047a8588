"""Run Forewarn components as real child processes for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import eventually


class Component:
    """One `forewarn <command>` child process (or `python -m <module>`) with its log in a file."""

    def __init__(
        self,
        command: str,
        env: dict[str, str],
        log_dir: Path,
        name: str,
        *,
        module: str = "forewarn",
    ) -> None:
        self.command = command
        self.module = module
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Component:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI or test entry point
            [sys.executable, "-m", self.module, *self.command.split()],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def kill(self) -> None:
        """kill -9: no clean-up, no offset commit, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C, as an operator would; kill -9 if it does not stop in time."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode or 0)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


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


def tails(procs: Sequence[Component], chars: int = 3000) -> str:
    """The end of each process's log, under its file name: what a failed wait reports."""
    return "\n".join(f"--- {p.log_path.name}\n{p.log()[-chars:]}" for p in procs)


@contextmanager
def components(*items: Component) -> Iterator[tuple[Component, ...]]:
    try:
        yield items
    finally:
        for item in items:
            item.kill()


async def wait_healthy(url: str, procs: Sequence[Component], seconds: float = 60.0) -> None:
    """Wait until `url`/healthz answers 200 (the process has started serving)."""

    async def healthy() -> bool:
        for proc in procs:
            if not proc.running:
                raise AssertionError(f"{proc.log_path.name} exited\n{tails(procs)}")
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(healthy, f"{url}/healthz", seconds=seconds, detail=lambda: tails(procs))
