"""Publish the contacts the API answers (customer lookups) to the `contacts` topic."""

from __future__ import annotations

import asyncio
from datetime import datetime

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.settings import Settings
from consumers.clients import bootstrap, make_producer

log = structlog.get_logger("forewarn.contacts")


class KafkaContactSink:
    """A `ContactSink` that writes `{"ts", "customer_id", "channel": "lookup"}` to Kafka.

    The producer starts on first use, so an API that is never asked starts no Kafka client.
    A contact that cannot be published is logged and dropped: it only refines statistics
    (first-contact time, the `contacts_spike` rule), and the caller already has its answer.
    """

    def __init__(self, settings: Settings, *, channel: str = "lookup") -> None:
        bootstrap(settings)  # fail now, not at the first lookup, when no broker is configured
        self.settings = settings
        self.topic = settings.topic("contacts")
        self.channel = channel
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def record(self, customer_id: str, at: datetime) -> None:
        """Publish one contact of this customer at `at`, keyed by the customer id."""
        value = orjson.dumps(
            {"ts": int(at.timestamp() * 1000), "customer_id": customer_id, "channel": self.channel}
        )
        try:
            producer = await self._started()
            await producer.send_and_wait(self.topic, value=value, key=customer_id.encode())
        except KafkaError as exc:
            log.warning("contact not published", topic=self.topic, error=type(exc).__name__)

    async def aclose(self) -> None:
        """Flush and stop the producer, if it was ever started."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
