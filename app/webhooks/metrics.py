"""Prometheus metrics of the provider webhooks, created once per registry."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter


@dataclass(frozen=True)
class WebhookMetrics:
    receipts: Counter
    replies: Counter


@cache
def webhook_metrics(registry: CollectorRegistry = REGISTRY) -> WebhookMetrics:
    return WebhookMetrics(
        receipts=Counter(
            "forewarn_delivery_receipts_total",
            "SMS delivery receipts received, by status and whether they matched a notice.",
            ["status", "matched"],
            registry=registry,
        ),
        replies=Counter(
            "forewarn_sms_replies_total",
            "SMS replies received from customers, by what they did "
            "(opt_out, opt_in, survey, ignored).",
            ["action"],
            registry=registry,
        ),
    )
