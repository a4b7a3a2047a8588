"""`make run` as a newcomer sees it: the demo finds the fault, tells customers, stops cleanly."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.net import free_port
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

FOREWARN = [sys.executable, "-m", "forewarn"]


def demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FOREWARN_API_PORT": str(free_port()), "COLUMNS": "200"}
    env.pop("FOREWARN_KAFKA_BOOTSTRAP_SERVERS", None)
    return subprocess.Popen(  # noqa: S603 - our own command line
        [*FOREWARN, "demo", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def children(pid: int) -> list[int]:
    pgrep = shutil.which("pgrep") or "/usr/bin/pgrep"
    found = subprocess.run(  # noqa: S603 - a fixed command and a pid
        [pgrep, "-P", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in found.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_demo_finds_both_faults_before_customers_call_tells_them_and_stops_by_itself(
    tmp_path: Path,
) -> None:
    # forewarn/scenarios/demo.yaml with its first fault 10 s in, lasting 30 s: 20x scenario time.
    started = time.monotonic()
    process = demo(
        tmp_path, "--fault-after", "10", "--fault-duration", "30", "--exit-when-resolved"
    )
    output, _ = process.communicate(timeout=240)
    elapsed = time.monotonic() - started

    assert process.returncode == 0, output
    # The fibre cut on a node and the power cut on a hub (its nodes rolled up into it).
    assert "outage OPEN" in output and "outage RESOLVED" in output
    for scope in ("node=north-hub-1-node-2", "hub=north-hub-2"):
        assert any("outage OPEN" in line and scope in line for line in output.splitlines())
    assert "north-hub-3-node-1" not in output  # the flapping modem's node: no outage
    # The live table says how long before the first customer call each was known.
    assert "min before the first customer call" in output
    assert "first customer call came" not in output
    assert "notice sent detected  sms" in output and "notice sent resolved" in output
    assert "Stopped cleanly" in output
    assert "+4915" not in output and "+4917" not in output
    assert "@example.com" not in output.replace("•••@example.com", "")
    assert elapsed < 150, f"the demo took {elapsed:.0f}s"


def test_ctrl_c_stops_the_demo_and_leaves_no_process_behind(tmp_path: Path) -> None:
    process = demo(tmp_path, "--fault-after", "600")
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if "loaded" in line or time.monotonic() > deadline:
            break
    spawned = children(process.pid)
    assert spawned, "the embedded broker should run as a child process"

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 0, output
    assert "Stopped cleanly" in output

    def left() -> list[int]:
        return [pid for pid in spawned if alive(pid)]

    asyncio.run(eventually(lambda: not left(), "the demo's children to exit", seconds=5))
    assert left() == []
