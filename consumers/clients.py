"""aiokafka consumers and producers configured the one way Forewarn uses them."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener

from app.settings import Settings
from consumers.exceptions import BrokerUnavailableError


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        raise BrokerUnavailableError(
            "FOREWARN_KAFKA_BOOTSTRAP_SERVERS is not set and no embedded broker was started"
        )
    return settings.kafka_bootstrap_servers


def make_consumer(
    settings: Settings,
    topics: str | list[str],
    group_id: str,
    *,
    listener: ConsumerRebalanceListener | None = None,
    max_poll_records: int = 5000,
) -> AIOKafkaConsumer:
    """A consumer that never auto-commits: offsets move only after effects are persisted."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap(settings),
        group_id=settings.group(group_id),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_poll_records,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(300, settings.kafka_session_timeout_ms // 10),
    )
    names = [topics] if isinstance(topics, str) else topics
    consumer.subscribe([settings.topic(name) for name in names], listener=listener)
    return consumer


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer that waits for every replica: no idempotence (the embedded broker lacks it)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap(settings),
        acks="all",
        linger_ms=5,
        # Above the 4 MiB a consumer fetches per partition: any message read can be
        # dead-lettered as it came, even one over the 1 MiB telemetry limit.
        max_request_size=8 * 1024 * 1024,
    )
