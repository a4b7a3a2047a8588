"""The port every delivery channel implements, and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Notice:
    """One rendered message for one customer on one channel.

    `idempotency_key` is stable for an outbox row (customer x outage x stage x channel), so a
    provider that deduplicates on it never delivers the same notice twice.
    `unsubscribe_url` is the signed one-click opt-out link for this customer and channel.
    """

    outbox_id: int
    customer_id: str
    outage_id: str
    stage: str
    channel: str
    language: str
    to: str
    subject: str
    text: str
    html: str | None
    idempotency_key: str
    unsubscribe_url: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the provider answered: who took the notice and the id it gave it."""

    provider: str
    provider_id: str


class Channel(Protocol):
    """Hands a notice to a provider; raises `DeliveryError` subclasses when it cannot."""

    name: str
    provider: str
    idempotent: bool
    """Whether the provider deduplicates a resend of the same `idempotency_key`."""

    async def send(self, notice: Notice) -> Delivery: ...

    async def aclose(self) -> None:
        """Release connections; the channel is not used afterwards."""
