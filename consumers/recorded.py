"""Read recorded telemetry back from Kafka for a time range (for backtests).

Uses the broker's time index (`offsets_for_times`) to find where the range starts in each
partition, reads to its end, and decodes as the detector does; bad messages are counted, not
raised. Reads with no consumer group, so it never moves anyone's offsets.
"""

from __future__ import annotations

import time
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from app.detection.backtest import Recording
from app.detection.exceptions import RecordingUnavailableError
from app.settings import Settings
from consumers.clients import bootstrap


class KafkaRecordedTelemetry:
    """`RecordedTelemetry` read back from the `telemetry` and `contacts` topics."""

    def __init__(
        self, settings: Settings, *, limit: int = 5_000_000, timeout_seconds: float = 120.0
    ) -> None:
        self.settings = settings
        self.limit = limit
        self.timeout_seconds = timeout_seconds

    async def read_range(self, start: datetime, end: datetime) -> Recording:
        """Return the telemetry and contacts whose record timestamps fall in [start, end)."""
        try:
            return await _read(self.settings, start, end, self.limit, self.timeout_seconds)
        except KafkaError as exc:
            raise RecordingUnavailableError(f"cannot read the telemetry topic: {exc}") from exc


async def _read(
    settings: Settings, start: datetime, end: datetime, limit: int, timeout_seconds: float
) -> Recording:
    recording = Recording()
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap(settings),
        enable_auto_commit=False,
        max_poll_records=5000,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        topics = [settings.topic("telemetry"), settings.topic("contacts")]
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return recording
        consumer.assign(partitions)
        # The time index says where to start (a broker without one answers offset 0, which
        # is merely slower). The end is the high-water mark the fetches report, or the first
        # record past the range plus the allowed lateness (later ones cannot belong to it).
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, start_ms))
        for partition in partitions:
            found = starts.get(partition)
            if found is None:
                consumer.seek_to_end(partition)
            else:
                consumer.seek(partition, found.offset)
        stop_after_ms = end_ms + int(settings.allowed_lateness_seconds * 1000)
        contacts_topic = settings.topic("contacts")
        open_partitions = set(partitions)
        deadline = time.monotonic() + timeout_seconds
        while open_partitions and time.monotonic() < deadline:
            batch = await consumer.getmany(*open_partitions, timeout_ms=500)
            for partition, records in batch.items():
                for record in records:
                    if record.timestamp > stop_after_ms:
                        open_partitions.discard(partition)
                        break
                    if not start_ms <= record.timestamp < end_ms:
                        continue
                    if partition.topic == contacts_topic:
                        recording.add_contact(record.value)
                    else:
                        recording.add_telemetry(record.value)
                    if len(recording.events) + len(recording.contacts) >= limit:
                        recording.truncated = True
                        return recording
            for partition in list(open_partitions):
                highwater = consumer.highwater(partition)
                if highwater is not None and await consumer.position(partition) >= highwater:
                    open_partitions.discard(partition)
        recording.truncated = bool(open_partitions)
        return recording
    finally:
        await consumer.stop()
