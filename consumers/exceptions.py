"""Errors of the Kafka side."""

from __future__ import annotations

from app.exceptions import ForewarnError


class ConsumerError(ForewarnError):
    """Root of the errors raised in `consumers/`."""


class BrokerUnavailableError(ConsumerError):
    """The broker cannot be started or reached."""

    retriable = True
