"""Prometheus metrics of notification delivery, created once per registry.

Labels are bounded: channel, provider, stage, language and a short reason token; never a
customer, an address or an outage id.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class NotifierMetrics:
    sent: Counter
    failed: Counter
    retries: Counter
    provider_seconds: Histogram
    backlog: Gauge
    oldest_pending_seconds: Gauge
    circuit_open: Gauge
    fallbacks: Counter
    held: Gauge
    withdrawn: Counter


@cache
def notifier_metrics(registry: CollectorRegistry = REGISTRY) -> NotifierMetrics:
    return NotifierMetrics(
        sent=Counter(
            "forewarn_notifications_sent_total",
            "Notices a provider accepted.",
            ["channel", "provider", "stage", "language"],
            registry=registry,
        ),
        failed=Counter(
            "forewarn_notifications_failed_total",
            "Notices given up on, by reason.",
            ["channel", "provider", "stage", "reason"],
            registry=registry,
        ),
        retries=Counter(
            "forewarn_notification_retries_total",
            "Send attempts that failed and were scheduled again.",
            ["channel", "provider", "reason"],
            registry=registry,
        ),
        provider_seconds=Histogram(
            "forewarn_provider_request_seconds",
            "Time a provider took to accept or refuse a notice.",
            ["channel", "provider"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        ),
        backlog=Gauge(
            "forewarn_outbox_pending",
            "Outbox rows waiting to be sent.",
            registry=registry,
        ),
        oldest_pending_seconds=Gauge(
            "forewarn_outbox_oldest_pending_seconds",
            "Age of the oldest outbox row still waiting to be sent.",
            registry=registry,
        ),
        circuit_open=Gauge(
            "forewarn_circuit_open",
            "1 while a provider's circuit breaker is open or half open.",
            ["channel", "provider"],
            registry=registry,
        ),
        fallbacks=Counter(
            "forewarn_notification_fallbacks_total",
            "Notices re-planned on the fallback channel after their channel failed.",
            ["from_channel", "to_channel"],
            registry=registry,
        ),
        held=Gauge(
            "forewarn_outbox_held",
            "Outbox rows held because their channel is not configured on this notifier.",
            ["channel"],
            registry=registry,
        ),
        withdrawn=Counter(
            "forewarn_notifications_withdrawn_total",
            "Notices not sent because the customer opted out of their channel after planning.",
            ["channel", "stage"],
            registry=registry,
        ),
    )
