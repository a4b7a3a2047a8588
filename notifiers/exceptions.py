"""Errors a channel raises; `retriable` decides between retrying later and giving up."""

from __future__ import annotations

from app.exceptions import ForewarnError


class DeliveryError(ForewarnError):
    """A notice could not be handed to its provider.

    `reason` is a short, bounded token (`timeout`, `http_429`, `invalid_number`…) fit for a
    metric label and the outbox row; it never contains the recipient's address.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class TemporaryDeliveryError(DeliveryError):
    """Timeouts, 5xx, 429, a refused connection: trying again later can help."""

    retriable = True

    def __init__(self, reason: str, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """An invalid number, a rejected address, bad credentials: retrying cannot help."""

    retriable = False
