"""Errors of the Kafka side."""

from __future__ import annotations

from app.exceptions import ForewarnError


class ConsumerError(ForewarnError):
    """Root of the errors raised in `consumers/`."""


class BrokerUnavailableError(ConsumerError):
    """The broker cannot be started or reached."""

    retriable = True


class DecodeError(ConsumerError):
    """A message that is not what its topic's contract says; it goes to the DLQ."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
