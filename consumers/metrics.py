"""Prometheus metrics of the Kafka side, created once per registry."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class ConsumerMetrics:
    consumed: Counter
    decode_failures: Counter
    dlq_writes: Counter
    transitions: Counter
    batch_seconds: Histogram
    batch_size: Histogram
    tracked_scopes: Gauge
    planned: Counter
    skipped: Counter
    late_events: Counter
    detection_latency: Histogram
    lead_time: Histogram
    consumer_lag: Gauge
    assigned_partitions: Gauge
    outages: Gauge
    update_overdue: Gauge
    automatic_updates: Counter


@cache
def consumer_metrics(registry: CollectorRegistry = REGISTRY) -> ConsumerMetrics:
    return ConsumerMetrics(
        consumed=Counter(
            "forewarn_events_consumed_total",
            "Kafka messages consumed.",
            ["topic", "partition"],
            registry=registry,
        ),
        decode_failures=Counter(
            "forewarn_decode_failures_total",
            "Messages that failed to decode, by reason.",
            ["topic", "reason"],
            registry=registry,
        ),
        dlq_writes=Counter(
            "forewarn_dlq_writes_total", "Messages written to a DLQ.", ["topic"], registry=registry
        ),
        transitions=Counter(
            "forewarn_outage_transitions_total",
            "Outage transitions persisted, by target state.",
            ["state"],
            registry=registry,
        ),
        batch_seconds=Histogram(
            "forewarn_batch_processing_seconds",
            "Seconds to process one consumed batch, persist and commit included.",
            ["consumer"],
            registry=registry,
        ),
        batch_size=Histogram(
            "forewarn_batch_size",
            "Messages per consumed batch.",
            ["consumer"],
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
            registry=registry,
        ),
        tracked_scopes=Gauge(
            "forewarn_tracked_scopes", "Rule x scope pairs the engine tracks.", registry=registry
        ),
        planned=Counter(
            "forewarn_notifications_planned_total",
            "Outbox rows written by the planner, by stage.",
            ["stage"],
            registry=registry,
        ),
        late_events=Counter(
            "forewarn_late_events_total",
            "Events older than the watermark minus the allowed lateness, counted, not applied.",
            registry=registry,
        ),
        detection_latency=Histogram(
            "forewarn_detection_latency_seconds",
            "From the first bad event (event time) to the outage opening (wall clock).",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=registry,
        ),
        lead_time=Histogram(
            "forewarn_lead_time_seconds",
            "From an outage opening to its first customer contact; positive beats the phones.",
            buckets=(-300, -60, 0, 60, 120, 300, 600, 900, 1800, 3600),
            registry=registry,
        ),
        consumer_lag=Gauge(
            "forewarn_consumer_lag_messages",
            "Messages between a partition's high watermark and the consumer's position.",
            ["consumer", "topic", "partition"],
            registry=registry,
        ),
        assigned_partitions=Gauge(
            "forewarn_assigned_partitions",
            "Partitions currently assigned to this process.",
            ["consumer"],
            registry=registry,
        ),
        skipped=Counter(
            "forewarn_messages_skipped_total",
            "Messages consumed on purpose without effect, by consumer and reason.",
            ["consumer", "reason"],
            registry=registry,
        ),
        outages=Gauge(
            "forewarn_outages",
            "Outages not yet closed, by state and severity.",
            ["state", "severity"],
            registry=registry,
        ),
        update_overdue=Gauge(
            "forewarn_update_overdue_outages",
            "Outages whose promised next update is more than a minute overdue.",
            registry=registry,
        ),
        automatic_updates=Counter(
            "forewarn_automatic_updates_total",
            "'Still working on it' updates posted because a promised update fell due.",
            registry=registry,
        ),
    )
